import type { PackumentLike, PackumentVersion } from "../src/index.js";

/**
 * A long, deterministic release history in packument form, for the benchmark and the large-history
 * tests (real registry-made fixtures are in `fixtures/`): patch and minor releases, a pre-release run
 * before every major, maintenance releases of the previous major after it, some deprecations.
 */
export function syntheticPackument(name: string, count: number, seed = 7): PackumentLike {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const publishers = ["alice", "bob", "carol"];
  const versions: Record<string, PackumentVersion> = {};
  const time: Record<string, string> = {};
  let clock = Date.UTC(2012, 0, 1);
  let [major, minor, patch] = [0, 1, 0];
  const maintenance: [number, number, number][] = [];
  const emit = (version: string) => {
    clock += Math.floor(random() * 36 * 3_600_000) + 600_000;
    const manifest: PackumentVersion = {
      name,
      version,
      _npmUser: { name: publishers[Math.floor(random() * publishers.length)] as string },
    };
    if (!version.includes("-") && random() < 0.03) manifest.deprecated = `${version} has a critical bug; upgrade`;
    versions[version] = manifest;
    time[version] = new Date(clock).toISOString();
  };
  emit("0.1.0");
  while (Object.keys(versions).length < count - 2) {
    const roll = random();
    if (roll < 0.006 && Object.keys(versions).length + 8 < count) {
      const target = major + 1;
      const betas = 2 + Math.floor(random() * 4);
      for (let n = 0; n < betas; n++) emit(`${target}.0.0-beta.${n}`);
      emit(`${target}.0.0-rc.0`);
      maintenance.push([major, minor, patch]);
      [major, minor, patch] = [target, 0, 0];
      emit(`${major}.0.0`);
    } else if (roll < 0.05 && maintenance.length > 0) {
      const line = maintenance.at(-1) as [number, number, number];
      line[2]++;
      emit(`${line[0]}.${line[1]}.${line[2]}`);
    } else if (roll < 0.25) {
      minor++;
      patch = 0;
      emit(`${major}.${minor}.0`);
    } else {
      patch++;
      emit(`${major}.${minor}.${patch}`);
    }
  }
  const latest = `${major}.${minor}.${patch}`;
  emit(`${major + 1}.0.0-beta.0`);
  emit(`${major + 1}.0.0-beta.1`);
  const distTags: Record<string, string> = { latest, next: `${major + 1}.0.0-beta.1` };
  const legacy = maintenance.at(-1);
  if (legacy) distTags.legacy = legacy.join(".");
  return {
    name,
    "dist-tags": distTags,
    versions,
    time: { created: time["0.1.0"] as string, modified: new Date(clock).toISOString(), ...time },
  };
}
