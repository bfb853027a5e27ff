/**
 * Structured logs: one JSON object per line on stderr (stdout is the MCP channel
 * in `--stdio` mode). Never pass secrets in fields: keys and tokens stay out.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: { level?: Level; write?: (line: string) => void } = {}): Logger {
  const min = ORDER[options.level ?? ((process.env.CAPFRAME_LOG_LEVEL as Level | undefined) ?? 'info')] ?? ORDER.info;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
