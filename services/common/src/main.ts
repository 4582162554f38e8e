import { KashoError } from './errors.js';

/**
 * Runs a program's main function: prints `--help`, turns known errors into their message and a non-zero exit
 * code, and never prints a stack trace for a mistake the user can fix.
 */
export function runMain(help: string, main: (argv: string[]) => Promise<void>): void {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
    return;
  }
  main(argv).catch((error: unknown) => {
    if (error instanceof KashoError) {
      process.stderr.write(`Error: ${error.describe()}\n`);
    } else {
      process.stderr.write(
        `Error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exitCode = 1;
  });
}
