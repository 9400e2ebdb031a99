import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consoleSlot } from '../../../lib/runtime/consoleInvocation.ts';

describe('Function: consoleSlot', () => {
  it('keys a console payload on its content alone: no time bucket splits two presses', () => {
    // Prepare
    const payload = { action: 'backup', instanceIds: ['i-0123456789abcdef0'] };

    // Act
    const slot = consoleSlot(payload);

    // Assess
    expect(slot).toMatch(/^payload-[0-9a-f]{32}$/);
    expect(slot).not.toContain('@');
  });

  it('gives the same key whatever the order of the fields', () => {
    // Act & Assess
    expect(consoleSlot({ action: 'retention', schedule: 'daily', dryRun: false })).toBe(
      consoleSlot({ dryRun: false, schedule: 'daily', action: 'retention' }),
    );
  });

  it('gives different keys to payloads that differ in any value', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^i-[0-9a-f]{17}$/), { minLength: 2, maxLength: 2 }),
        ([a, b]) => {
          // Act & Assess
          expect(consoleSlot({ action: 'backup', instanceIds: [a] })).not.toBe(
            consoleSlot({ action: 'backup', instanceIds: [b] }),
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
