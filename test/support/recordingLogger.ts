/**
 * A logger port whose every level is a vitest mock, for the jobs' unit tests to read what
 * a job logged.
 */
import { type Mock, vi } from 'vitest';
import type { LoggerPort } from '../../lib/jobs/ports.ts';

/** One level of the logger port. */
export type LogFunction = LoggerPort['info'];

/** The logger port with each level a mock. */
export type RecordingLogger = { readonly [K in keyof LoggerPort]: Mock<LogFunction> };

/**
 * A logger that records every call, level by level, and prints nothing.
 *
 * @example
 * const logger = recordingLogger();
 * await runBackup({ ...deps, logger });
 * expect(logger.warn).toHaveBeenCalledWith('instance skipped', expect.anything());
 */
export function recordingLogger(): RecordingLogger {
  return {
    debug: vi.fn<LogFunction>(),
    info: vi.fn<LogFunction>(),
    warn: vi.fn<LogFunction>(),
    error: vi.fn<LogFunction>(),
  };
}
