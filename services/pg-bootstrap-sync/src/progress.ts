/** Counts what the bootstrap has done and reports it every few seconds and at the end. Never sees row values. */
export class Progress {
  tablesTotal = 0;
  tablesDone = 0;
  rows = 0;
  bytes = 0;
  ddl = 0;
  private readonly startedAt = process.hrtime.bigint();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly report: (line: string) => void,
    private readonly intervalMs = 2_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.report(this.describe()), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get elapsedSeconds(): number {
    return Number(process.hrtime.bigint() - this.startedAt) / 1e9;
  }

  describe(): string {
    const seconds = this.elapsedSeconds;
    const rate = seconds > 0 ? Math.round(this.rows / seconds) : 0;
    return (
      `tables ${this.tablesDone}/${this.tablesTotal}, ${this.rows.toLocaleString('en-US')} rows, ` +
      `${this.ddl} DDL statements, ${formatBytes(this.bytes)} read, ${rate.toLocaleString('en-US')} rows/s, ` +
      `${seconds.toFixed(1)}s`
    );
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]!}`;
}
