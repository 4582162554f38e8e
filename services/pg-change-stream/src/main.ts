import { KashoError, runMain } from '@kasho/common';
import { HELP, loadConfig } from './config.js';

runMain(HELP, async () => {
  loadConfig(process.env);
  throw new KashoError('pg-change-stream: capture is not built yet', 'See issue #3.');
});
