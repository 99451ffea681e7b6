/**
 * The public traces the benchmarks use, where they come from and the digest each folder must have
 * (folderDigest in bench-data.ts: sha256 over the sorted "<sha256>  <path>" lines of its files).
 */
export interface Dataset {
  /** Folder under the data folder, as in ../shared/data. */
  readonly path: string;
  readonly digest: string;
  readonly files: number;
  /** How to get it when no copy is at hand. */
  readonly source: PublicSource | StitchedSource | NoPublicSource;
}

/** A folder inside a public tarball. */
export interface PublicSource {
  readonly kind: 'tarball';
  readonly url: string;
  /** Path of the folder inside the tarball, after its top-level folder. */
  readonly inside: string;
}

/** Made here from another dataset (bench/lib/stitch-days.ts). */
export interface StitchedSource {
  readonly kind: 'stitched';
  readonly from: string;
  readonly days: number;
}

export interface NoPublicSource {
  readonly kind: 'none';
  readonly why: string;
}

/** CloudSim at the tag whose examples ship the PlanetLab days (github.com/Cloudslab/cloudsim). */
export const CLOUDSIM_TARBALL_URL = 'https://codeload.github.com/Cloudslab/cloudsim/tar.gz/refs/tags/cloudsim-3.0.3';
const CLOUDSIM_WORKLOAD = 'modules/cloudsim-examples/src/main/resources/workload/planetlab';

export const DATASETS: readonly Dataset[] = [
  {
    path: 'planetlab/20110303',
    digest: '1c564c1527d50cfd68096207d3a0f9a021b2072a74c7cff622c6244a2c9f3cf9',
    files: 1052,
    source: { kind: 'tarball', url: CLOUDSIM_TARBALL_URL, inside: `${CLOUDSIM_WORKLOAD}/20110303` },
  },
  {
    path: 'planetlab/20110306',
    digest: '6bd94b5bf7d2323367c47135e250c058f0ea52c6277face00673d64ec62e484b',
    files: 898,
    source: { kind: 'tarball', url: CLOUDSIM_TARBALL_URL, inside: `${CLOUDSIM_WORKLOAD}/20110306` },
  },
  {
    path: 'planetlab/20110309',
    digest: '9bc3b44d023d5aa791ed6443032a0ce5c620e2a5d02e2f6f0261f5a436d51579',
    files: 1061,
    source: { kind: 'tarball', url: CLOUDSIM_TARBALL_URL, inside: `${CLOUDSIM_WORKLOAD}/20110309` },
  },
  {
    path: 'bitbrains/pl_2013-8_1d',
    digest: 'c250823efacc7fba0441ec6d5a595c624de7f55bfcf68e1a0de3bc5d5355d55b',
    files: 999,
    source: {
      kind: 'none',
      why:
        'it is derived from the Bitbrains GWA-T-12 "Rnd" archive (first 24 h of 2013-08 on a 300 s grid, with vms.csv), ' +
        'and the derivation is not scripted here: copy it from a checkout that has ../shared/data, or pass --from DIR',
    },
  },
  {
    path: 'bitbrains/pl_2013-8_7d',
    digest: 'edd625036c38b17b73a23560c276af7297a5b7697147917877fdfc31af746168',
    files: 999,
    source: { kind: 'stitched', from: 'bitbrains/pl_2013-8_1d', days: 7 },
  },
];

/** Notes that go with the PlanetLab days when the shared folder has them (not checked: documentation). */
export const SHARED_EXTRAS = ['README.md', 'planetlab/REFERENCE.md', 'planetlab/cloudsim-model.json'] as const;
