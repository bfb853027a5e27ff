/** Exit codes shared by every command: 0 allowed/OK, 2 denied, 1 error. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_DENIED = 2;

/** Writes one line to stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Writes one line to stderr. */
export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}
