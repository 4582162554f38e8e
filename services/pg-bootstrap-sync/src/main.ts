import { KashoError, runMain } from '@kasho/common';
import { HELP, loadConfig } from './config.js';

runMain(HELP, async (argv) => {
  loadConfig(argv, process.env);
  throw new KashoError('pg-bootstrap-sync: conversion is not built yet', 'See issue #5.');
});
