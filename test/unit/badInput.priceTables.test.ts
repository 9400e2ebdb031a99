/**
 * The bad-input corpus of price tables (test/fixtures/bad-input/price-tables.json): each
 * bad `SNAPSHOT_PRICES` is named with its field and the fix, and never stops a function
 * from starting (the cold start keeps the published prices, so backups and retention run
 * on); the problem rides with every cost shown.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config/environment.ts';
import { defaultPriceTable } from '../../lib/domain/costLedger.ts';

interface PriceTableCase {
  readonly name: string;
  readonly input: string;
  readonly expect: { readonly field: string; readonly messageIncludes: readonly string[] };
}

const cases = JSON.parse(
  readFileSync(new URL('../fixtures/bad-input/price-tables.json', import.meta.url), 'utf8'),
) as PriceTableCase[];

const BASE = { AWS_REGION: 'us-east-1', DEPLOYMENT: 'prod' };

describe('Bad input: price tables (SNAPSHOT_PRICES)', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    // Act
    const config = loadConfig({ ...BASE, SNAPSHOT_PRICES: c.input });

    // Assess: the function starts, with the published prices, and the problem named.
    expect(config.priceTable.standardPerGbMonth).toBe(
      defaultPriceTable('us-east-1').standardPerGbMonth,
    );
    expect(config.priceTable.name).toContain(`${c.expect.field} rejected`);
    expect(config.priceTableProblem).toContain(`Environment variable ${c.expect.field}`);
    for (const part of c.expect.messageIncludes) expect(config.priceTableProblem).toContain(part);
  });

  it('reads a good table without a problem', () => {
    // Act
    const config = loadConfig({
      ...BASE,
      SNAPSHOT_PRICES: '{"standardPerGbMonth":0.06,"archivePerGbMonth":0.015,"name":"negotiated"}',
    });

    // Assess
    expect(config.priceTable).toMatchObject({ name: 'negotiated', standardPerGbMonth: 0.06 });
    expect(config.priceTableProblem).toBeUndefined();
  });
});
