/**
 * What `RegisterImage` must be told of the machine an image boots: EC2 cannot read it
 * from snapshots, and a wrong value makes an image that does not boot (an arm64 root
 * volume registered as x86_64) or does not launch (UEFI-only kernels under legacy BIOS).
 */
export interface ImagePlatform {
  /** x86_64, arm64, i386, x86_64_mac or arm64_mac. */
  readonly architecture: string;
  /** legacy-bios, uefi or uefi-preferred; absent: the instance type's default. */
  readonly bootMode?: string | undefined;
  readonly enaSupport: boolean;
  /** hvm or paravirtual. */
  readonly virtualizationType: string;
  /** v2.0 when the source had a NitroTPM (needs UEFI). */
  readonly tpmSupport?: string | undefined;
  readonly rootDeviceName?: string | undefined;
  /** Where these facts were read, for the answer and the run history. */
  readonly from: string;
}

/** The facts of an instance or image that {@link platformFrom} reads. */
export interface PlatformFacts {
  readonly architecture?: string | undefined;
  /** The boot mode the instance or image asks for. */
  readonly bootMode?: string | undefined;
  /** The boot mode an instance runs with now (for `uefi-preferred`, what it chose). */
  readonly currentBootMode?: string | undefined;
  readonly enaSupport?: boolean | undefined;
  readonly virtualizationType?: string | undefined;
  readonly tpmSupport?: string | undefined;
  readonly rootDeviceName?: string | undefined;
}

/**
 * The platform of an instance or image, or undefined when it does not say its
 * architecture (nothing else can be trusted then). The boot mode asked for wins over the
 * one running; ENA is off only when the source says so; virtualization defaults to hvm,
 * the only kind current instance types run. Pure.
 *
 * @example
 * platformFrom({ architecture: 'arm64', bootMode: 'uefi', enaSupport: true }, 'instance i-1');
 * // { architecture: 'arm64', bootMode: 'uefi', enaSupport: true, virtualizationType: 'hvm', from: 'instance i-1' }
 */
export function platformFrom(facts: PlatformFacts, from: string): ImagePlatform | undefined {
  if (!facts.architecture) return undefined;
  const bootMode = facts.bootMode || facts.currentBootMode || undefined;
  return {
    architecture: facts.architecture,
    ...(bootMode ? { bootMode } : {}),
    enaSupport: facts.enaSupport !== false,
    virtualizationType: facts.virtualizationType || 'hvm',
    ...(facts.tpmSupport ? { tpmSupport: facts.tpmSupport } : {}),
    ...(facts.rootDeviceName ? { rootDeviceName: facts.rootDeviceName } : {}),
    from,
  };
}
