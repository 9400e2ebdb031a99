/**
 * A gate for fake AWS calls that lets them answer only once `opens` of them are in flight
 * at once, and records the most in flight. Calls sent one after another never get their
 * answer, so a test of "sent as the bucket allows, not one after another" fails (times
 * out) against sequential code.
 *
 * @example
 * const gate = inFlightGate(3);
 * const tiers = { async lockSnapshot(r) { await gate.pass(); return answer(r); } };
 */
export function inFlightGate(opens: number): { readonly peak: number; pass(): Promise<void> } {
  let inFlight = 0;
  let peak = 0;
  const waiting: (() => void)[] = [];
  return {
    get peak() {
      return peak;
    },
    async pass() {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      if (inFlight >= opens) for (const go of waiting.splice(0)) go();
      else await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight -= 1;
    },
  };
}
