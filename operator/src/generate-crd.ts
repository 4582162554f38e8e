/** Writes crds/kasho.io_kashopipelines.yaml from the zod definitions (npm run generate:crd -w @kasho/operator). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CRD_FILE, renderCrdYaml } from './api/crd.js';

const file = fileURLToPath(new URL(`../../${CRD_FILE}`, import.meta.url));
writeFileSync(file, renderCrdYaml());
process.stdout.write(`wrote ${file}\n`);
