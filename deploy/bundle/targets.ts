// The platforms a bundle can be built for, and what each one's CPU is called by Node, ELF, npm and Debian.

export type BundleTarget = 'linux-arm64' | 'linux-armv7' | 'linux-x64';
export const TARGETS: readonly BundleTarget[] = ['linux-arm64', 'linux-armv7', 'linux-x64'];

/** process.arch on the target, which is also its ELF machine name (elf.ts). */
export function targetArch(target: BundleTarget): 'arm64' | 'arm' | 'x64' {
  return target === 'linux-arm64' ? 'arm64' : target === 'linux-armv7' ? 'arm' : 'x64';
}

/** sharp's platform packages name 32-bit ARM linux-arm. */
export function sharpPlatform(target: BundleTarget): string {
  return target === 'linux-armv7' ? 'linux-arm' : target;
}

export function hostTarget(): BundleTarget | undefined {
  if (process.platform !== 'linux') return undefined;
  return process.arch === 'arm64'
    ? 'linux-arm64'
    : process.arch === 'arm'
      ? 'linux-armv7'
      : process.arch === 'x64'
        ? 'linux-x64'
        : undefined;
}

/** `uname -m` on a device -> the bundle it runs. */
export const UNAME_TARGET: Record<string, BundleTarget> = {
  aarch64: 'linux-arm64',
  arm64: 'linux-arm64',
  armv7l: 'linux-armv7',
  armv8l: 'linux-armv7',
  x86_64: 'linux-x64',
  amd64: 'linux-x64',
};
