import { KashoError, runMain } from '@kasho/common';
import { HELP, loadConfig } from './config.js';

runMain(HELP, async () => {
  loadConfig(process.env);
  throw new KashoError('pg-translicator: apply is not built yet', 'See issue #4.');
});
