/**
 * Which napi-rs target this process runs on (`linux-x64-gnu`, `darwin-arm64`, …): the
 * suffix of the prebuilt package (`capframe-linux-x64-gnu`) and of a local build
 * (`native/capframe-native.linux-x64-gnu.node`).
 *
 * Ported from the loader that `napi build --platform --js` generates (@napi-rs/cli v3,
 * MIT), so Capframe picks the same artifact a napi-rs package would — including its
 * glibc/musl detection — without shipping the generated file, whose order (local file
 * first, then package) and errors are not ours.
 */
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Reads ldd, a shell script on glibc and a link to the musl loader on musl. `null` when it cannot tell. */
export function isMuslFromFilesystem(lddPath = '/usr/bin/ldd'): boolean | null {
  try {
    return readFileSync(lddPath, 'utf8').includes('musl');
  } catch {
    return null;
  }
}

const isFileMusl = (file: string) => file.includes('libc.musl-') || file.includes('ld-musl-');

/** Asks Node's diagnostic report which C library the process linked. `null` when there is no report. */
export function isMuslFromReport(): boolean | null {
  if (typeof process.report?.getReport !== 'function') return null;
  // As napi-rs does: the network section is slow to gather and not needed here.
  (process.report as { excludeNetwork?: boolean }).excludeNetwork = true;
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] };
  if (report.header?.glibcVersionRuntime) return false;
  return Array.isArray(report.sharedObjects) && report.sharedObjects.some(isFileMusl);
}

function isMuslFromChildProcess(): boolean {
  try {
    return execSync('ldd --version', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('musl');
  } catch {
    // napi-rs' choice: when nothing tells, assume glibc.
    return false;
  }
}

let musl: boolean | undefined;

/** True on a musl libc Linux (Alpine), false elsewhere; decided once per process. */
export function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  musl ??= isMuslFromFilesystem() ?? isMuslFromReport() ?? isMuslFromChildProcess();
  return musl;
}

export interface TargetFacts {
  platform: NodeJS.Platform | 'openharmony';
  arch: string;
  /** Linux only: musl rather than glibc. */
  musl: boolean;
  /** Windows only: Node itself built with MinGW (napi-rs' `win32-x64-gnu`). */
  mingw: boolean;
}

function currentFacts(): TargetFacts {
  const variables = (process.config as { variables?: Record<string, unknown> } | undefined)?.variables ?? {};
  return {
    platform: process.platform,
    arch: process.arch,
    musl: isMusl(),
    mingw: variables.shlib_suffix === 'dll.a' || variables.node_target_type === 'shared_library',
  };
}

/**
 * The napi-rs target name for a platform, or undefined where napi-rs has none.
 * (napi-rs also tries `darwin-universal` first on macOS; Capframe does not publish one.)
 *
 * @example
 * nativeTarget() // 'linux-x64-gnu' on glibc Linux x64
 * nativeTarget({ platform: 'linux', arch: 'arm64', musl: true, mingw: false }) // 'linux-arm64-musl'
 */
export function nativeTarget(facts: TargetFacts = currentFacts()): string | undefined {
  const { platform, arch } = facts;
  const libc = (gnu: string, musl: string) => `linux-${arch}-${facts.musl ? musl : gnu}`;
  switch (platform) {
    case 'android':
      return arch === 'arm64' ? 'android-arm64' : arch === 'arm' ? 'android-arm-eabi' : undefined;
    case 'win32':
      if (arch === 'x64') return facts.mingw ? 'win32-x64-gnu' : 'win32-x64-msvc';
      return arch === 'ia32' || arch === 'arm64' ? `win32-${arch}-msvc` : undefined;
    case 'darwin':
      return arch === 'x64' || arch === 'arm64' ? `darwin-${arch}` : undefined;
    case 'freebsd':
      return arch === 'x64' || arch === 'arm64' || arch === 'ppc64' ? `freebsd-${arch}` : undefined;
    case 'linux':
      if (arch === 'x64' || arch === 'arm64' || arch === 'loong64' || arch === 'riscv64') return libc('gnu', 'musl');
      if (arch === 'arm') return libc('gnueabihf', 'musleabihf');
      return arch === 'ppc64' || arch === 's390x' ? `linux-${arch}-gnu` : undefined;
    case 'openharmony':
      return arch === 'arm64' || arch === 'x64' || arch === 'arm' ? `openharmony-${arch}` : undefined;
    default:
      return undefined;
  }
}
