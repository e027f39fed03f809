/**
 * ml.stats: the two-sample KS test against scipy.stats.ks_2samp, PSI against numpy, the Kolmogorov /
 * Smirnov distributions across all of their computation branches, and the quantile sketch's error bound.
 *
 * Reference values: test/fixtures/ml-stats/{ks_2samp.json, psi.json} (scipy 1.10.1 / numpy 1.24.2; a copy
 * of the project's shared reference, with its README); WEIR_STATS_REFERENCE_DIR points elsewhere. A missing
 * reference fails the test (it is never skipped).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WeirError } from '../src/errors.js';
import {
  KsReference,
  PsiAccumulator,
  QuantileSketch,
  binomial,
  exactKsPValue,
  kolmogorovCdf,
  kolmogorovSf,
  ks2,
  ks2Sketch,
  ks2Sorted,
  ksPValue,
  psi,
  psiBinIndex,
  psiBins,
  psiFromCounts,
  quantileSorted,
  roundHalfEven,
  smirnovSf,
  sortSample,
  type KsAlternative,
  type KsMethod,
} from '../src/ml/stats/index.js';

// FC_NUM_RUNS=2000 for a deeper search.
const RUNS = Number(process.env.FC_NUM_RUNS ?? 200);

const ALTERNATIVES: readonly KsAlternative[] = ['two-sided', 'less', 'greater'];
const METHODS: readonly KsMethod[] = ['auto', 'exact', 'asymp'];

// ---------------------------------------------------------------------------------------------------
// Reference files

function referenceDir(): string {
  const candidates: string[] = [];
  if (process.env.WEIR_STATS_REFERENCE_DIR) candidates.push(process.env.WEIR_STATS_REFERENCE_DIR);
  // test/fixtures/ml-stats of the repository, found from this file upwards (it runs from a build folder)
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    candidates.push(join(dir, 'test', 'fixtures', 'ml-stats'));
    if (dirname(dir) === dir) break;
  }
  for (const c of candidates) if (existsSync(join(c, 'ks_2samp.json')) && existsSync(join(c, 'psi.json'))) return c;
  throw new Error(`reference values ks_2samp.json / psi.json not found; looked in: ${candidates.join(', ')}`);
}

interface KsExpected {
  readonly statistic: number;
  readonly pvalue: number;
  readonly statistic_location: number;
  readonly statistic_sign: number;
  readonly resolved_method?: string;
}
interface KsCase {
  readonly name: string;
  readonly n1: number;
  readonly n2: number;
  readonly x: number[];
  readonly y: number[];
  readonly results: Record<KsAlternative, Record<KsMethod, KsExpected>>;
}
interface PsiCase {
  readonly name: string;
  readonly reference: number[];
  readonly current: number[];
  readonly raw_quantile_edges: number[];
  readonly edges: number[];
  readonly ref_counts: number[];
  readonly cur_counts: number[];
  readonly terms: number[];
  readonly psi: number;
}

const REF_DIR = referenceDir();
const KS_CASES = (JSON.parse(readFileSync(join(REF_DIR, 'ks_2samp.json'), 'utf8')) as { cases: KsCase[] }).cases;
const PSI_CASES = (JSON.parse(readFileSync(join(REF_DIR, 'psi.json'), 'utf8')) as { cases: PsiCase[] }).cases;

/** The README's tolerance: within 1e-6 relative, or 1e-12 absolute for tiny p. */
function pClose(got: number, want: number): boolean {
  return Math.abs(got - want) <= 1e-12 || Math.abs(got - want) <= 1e-6 * Math.abs(want);
}
const relErr = (got: number, want: number): number => (got === want ? 0 : Math.abs(got - want) / Math.abs(want));

// ---------------------------------------------------------------------------------------------------
// Brute-force references

/** max |F1 − F2|, max(F1 − F2, 0), max(F2 − F1, 0) over the pooled points, straight from the definition. */
function bruteStatistics(a: readonly number[], b: readonly number[]): Record<KsAlternative, number> {
  let two = 0;
  let greater = 0;
  let less = 0;
  for (const t of [...a, ...b]) {
    const f1 = a.filter((v) => v <= t).length / a.length;
    const f2 = b.filter((v) => v <= t).length / b.length;
    two = Math.max(two, Math.abs(f1 - f2));
    greater = Math.max(greater, f1 - f2);
    less = Math.max(less, f2 - f1);
  }
  return { 'two-sided': two, greater, less };
}

/**
 * Exact p-value by enumerating all C(n1+n2, n1) orderings of the pooled sample (every one equally likely
 * under H0): the fraction with statistic >= h/lcm, all in integer units of 1/lcm.
 */
function enumeratedPValues(n1: number, n2: number, h: number): Record<KsAlternative, number> {
  const N = n1 + n2;
  const g = gcdOf(n1, n2);
  const lcm = (n1 / g) * n2;
  const u1 = lcm / n1;
  const u2 = lcm / n2;
  const hits = { 'two-sided': 0, greater: 0, less: 0 };
  let total = 0;
  for (let mask = 0; mask < 1 << N; mask++) {
    if (popcount(mask) !== n1) continue;
    total++;
    let diff = 0;
    let max = 0;
    let min = 0;
    for (let bit = 0; bit < N; bit++) {
      diff += mask & (1 << bit) ? u1 : -u2;
      if (diff > max) max = diff;
      if (diff < min) min = diff;
    }
    if (Math.max(max, -min) >= h) hits['two-sided']++;
    if (max >= h) hits.greater++;
    if (-min >= h) hits.less++;
  }
  return { 'two-sided': hits['two-sided'] / total, greater: hits.greater / total, less: hits.less / total };
}
function popcount(x: number): number {
  let c = 0;
  for (; x !== 0; x &= x - 1) c++;
  return c;
}
function gcdOf(a: number, b: number): number {
  return b === 0 ? a : gcdOf(b, a % b);
}

/** Deterministic test data that Python reproduces bit for bit (integer arithmetic, one division). */
function gen(n: number, mult: number, mod: number, scale: number, shift: number, quantize?: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let v = (((i * mult) % mod) / mod) * scale + shift;
    if (quantize !== undefined) v = Math.trunc(v * quantize);
    out.push(v);
  }
  return out;
}

const isInvalidArgument = (e: unknown): boolean => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT';

/** Small samples with many ties, or continuous-looking ones. */
const sampleArb: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 }),
  fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 40 }),
);

// ---------------------------------------------------------------------------------------------------

describe('ml.stats ks2: scipy.stats.ks_2samp reference values (scipy 1.10.1)', () => {
  it('covers every case, alternative and method in ks_2samp.json', () => {
    assert.ok(KS_CASES.length >= 7, `expected the 7 cases of ks_2samp.json, found ${KS_CASES.length}`);
    for (const c of KS_CASES) {
      assert.equal(c.x.length, c.n1, c.name);
      assert.equal(c.y.length, c.n2, c.name);
      assert.deepEqual(Object.keys(c.results).sort(), [...ALTERNATIVES].sort(), c.name);
      for (const alt of ALTERNATIVES) assert.deepEqual(Object.keys(c.results[alt]).sort(), [...METHODS].sort(), `${c.name} ${alt}`);
    }
  });

  for (const c of KS_CASES) {
    it(`${c.name} (n1=${c.n1}, n2=${c.n2})`, (t) => {
      let maxStat = 0;
      let maxRel = 0;
      for (const alternative of ALTERNATIVES) {
        for (const method of METHODS) {
          const want = c.results[alternative][method];
          const got = ks2(c.x, c.y, { alternative, method });
          const what = `${c.name} ${alternative} ${method}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
          assert.ok(Math.abs(got.statistic - want.statistic) <= 1e-9, `statistic: ${what}`);
          assert.ok(pClose(got.pValue, want.pvalue), `p-value: ${what}`);
          assert.equal(got.statisticLocation, want.statistic_location, `location: ${what}`);
          assert.equal(got.statisticSign, want.statistic_sign, `sign: ${what}`);
          if (method === 'auto') assert.equal(got.method, want.resolved_method, `resolved method: ${what}`);
          if (method === 'asymp') assert.equal(got.method, 'asymp', what);
          maxStat = Math.max(maxStat, Math.abs(got.statistic - want.statistic));
          if (want.pvalue > 1e-12) maxRel = Math.max(maxRel, relErr(got.pValue, want.pvalue));
        }
      }
      t.diagnostic(`max |ΔD| = ${maxStat}, max relative Δp = ${maxRel.toExponential(2)}`);
    });
  }

  it('the same through ks2Sorted and KsReference (reference sorted once)', () => {
    for (const c of KS_CASES) {
      const ref = new KsReference(c.x);
      const sx = sortSample(c.x);
      const sy = sortSample(c.y);
      for (const alternative of ALTERNATIVES) {
        for (const method of METHODS) {
          const want = ks2(c.x, c.y, { alternative, method });
          assert.deepEqual(ks2Sorted(sx, sy, { alternative, method }), want);
          assert.deepEqual(ref.test(c.y, { alternative, method }), want);
          assert.deepEqual(ref.testSorted(sy, { alternative, method }), want);
        }
      }
    }
  });
});

describe('ml.stats ks2: more scipy values (auto → asymp above 10 000, exact → asymp on overflow, ties, n=1)', () => {
  // scipy.stats.ks_2samp of scipy 1.17.1 on gen(...) data (which reproduces all of ks_2samp.json to 6e-16):
  // [statistic, pvalue, statistic_location, statistic_sign, method scipy used]
  type Row = [number, number, number, 1 | -1, 'exact' | 'asymp'];
  const cases: { name: string; x: number[]; y: number[]; want: Record<string, Row> }[] = [
    {
      name: 'auto resolves to asymp: 10001 vs 9000',
      x: gen(10001, 7919, 10007, 1.0, 0.0),
      y: gen(9000, 104729, 10009, 1.0, 0.01),
      want: {
        'two-sided|auto': [0.010421157884211607, 0.6783237829714447, 0.7883481562905966, 1, 'asymp'],
        'two-sided|exact': [0.01042115788421158, 0.6769230346053066, 0.7883481562905966, 1, 'exact'],
        'two-sided|asymp': [0.010421157884211607, 0.6783237829714447, 0.7883481562905966, 1, 'asymp'],
        'less|auto': [0, 1.0, 1.0099000899190729, -1, 'asymp'],
        'less|exact': [0, 1.0, 1.0099000899190729, -1, 'exact'],
        'greater|auto': [0.010421157884211607, 0.3537608951168065, 0.7883481562905966, 1, 'asymp'],
        // one-sided exact overflows: falls back to asymp with the lattice-rounded statistic
        'greater|exact': [0.01042115788421158, 0.35376089511680847, 0.7883481562905966, 1, 'asymp'],
      },
    },
    {
      name: 'one-sided exact overflows C(1300, 600): 600 vs 700',
      x: gen(600, 7919, 601, 1.0, 0.0),
      y: gen(700, 104729, 701, 1.1, -0.05),
      want: {
        'two-sided|auto': [0.04666666666666667, 0.4672182445924705, 0.9950083194675541, 1, 'exact'],
        'two-sided|asymp': [0.046666666666666745, 0.4686458733747757, 0.9950083194675541, 1, 'asymp'],
        'less|auto': [0.04642857142857143, 0.23737947972498227, 0.004921540656205418, -1, 'asymp'],
        'less|exact': [0.04642857142857143, 0.23737947972498227, 0.004921540656205418, -1, 'asymp'],
        'greater|auto': [0.04666666666666667, 0.23394959971665064, 0.9950083194675541, 1, 'asymp'],
        'greater|asymp': [0.046666666666666745, 0.2339495997166496, 0.9950083194675541, 1, 'asymp'],
      },
    },
    {
      name: 'ties, unequal sizes: 37 vs 23',
      x: gen(37, 7919, 101, 1.0, 0.0, 6),
      y: gen(23, 104729, 103, 1.0, 0.2, 6),
      want: {
        'two-sided|exact': [0.209165687426557, 0.48587814585988626, 2.0, 1, 'exact'],
        'two-sided|asymp': [0.20916568742655695, 0.5069898039608994, 2.0, 1, 'asymp'],
        'less|exact': [0.0, 1.0, 6.0, -1, 'exact'],
        'greater|exact': [0.209165687426557, 0.24614241481074978, 2.0, 1, 'exact'],
        'greater|asymp': [0.20916568742655695, 0.23836623382350555, 2.0, 1, 'asymp'],
      },
    },
    {
      name: 'n1 = 1 vs 9',
      x: gen(1, 1, 7, 1.0, 0.5),
      y: gen(9, 3, 11, 1.0, 0.0),
      want: {
        'two-sided|auto': [0.5555555555555556, 1.0, 0.36363636363636365, -1, 'exact'],
        'two-sided|asymp': [0.5555555555555556, 0.8888888888888888, 0.36363636363636365, -1, 'asymp'],
        'less|exact': [0.5555555555555556, 0.5, 0.36363636363636365, -1, 'exact'],
        'less|asymp': [0.5555555555555556, 0.38176006761337555, 0.36363636363636365, -1, 'asymp'],
        'greater|exact': [0.4444444444444444, 0.6, 0.5, 1, 'exact'],
        'greater|asymp': [0.4444444444444444, 0.5058670043570412, 0.5, 1, 'asymp'],
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const [key, [statistic, p, location, sign, method]] of Object.entries(c.want)) {
        const [alternative, m] = key.split('|') as [KsAlternative, KsMethod];
        const got = ks2(c.x, c.y, { alternative, method: m });
        const what = `${key}: got ${JSON.stringify(got)}`;
        assert.ok(Math.abs(got.statistic - statistic) <= 1e-9, what);
        assert.ok(pClose(got.pValue, p), what);
        assert.equal(got.statisticLocation, location, what);
        assert.equal(got.statisticSign, sign, what);
        assert.equal(got.method, method, what);
      }
    });
  }
});

describe('ml.stats Kolmogorov and Smirnov distributions: every computation branch', () => {
  // [branch, n, x, scipy.stats.kstwo.sf(x, n), kstwo.cdf(x, n)] — scipy 1.17.1 (_ksstats.py unchanged since 1.10)
  const KSTWO: [string, number, number, number, number][] = [
    ['Ruben–Gambino, x <= 1/n, n <= 140', 20, 0.04, 0.9999999999991517, 8.483004771271922e-13],
    ['Ruben–Gambino, x <= 1/2n', 1000, 0.0004, 1.0, 0.0],
    ['Ruben–Gambino, x >= 1 - 1/n', 10, 0.93, 5.649504979999961e-12, 0.9999999999943505],
    ['x >= 0.5: 2·smirnov', 30, 0.55, 4.74030723600559e-9, 0.9999999952596927],
    ['n <= 140: Durbin matrix', 100, 0.07, 0.6846706791645845, 0.31532932083541554],
    ['n <= 140: Pomeranz', 100, 0.15, 0.019839242125643017, 0.980160757874357],
    ['n <= 140: Miller, 2·smirnov', 100, 0.25, 5.408871776434847e-6, 0.9999945911282235],
    ['n > 140: 2·smirnov (n·x² >= 2.2)', 1000, 0.05, 0.013012074781090332, 0.9869879197970768],
    ['n > 140: Durbin matrix (n·x^1.5 <= 1.4)', 1000, 0.012, 0.9984464668620097, 0.0015535331379903396],
    ['n > 140: Pelz–Good', 1000, 0.03, 0.3226902143914636, 0.6773097856085364],
    ['n > 100000: Pelz–Good', 200000, 0.002, 0.39995085369038097, 0.600049146309619],
    ['n > 100000: 2·smirnov', 200000, 0.004, 0.003314212822560255, 0.9966857871924534],
  ];
  it('kolmogorovSf / kolmogorovCdf match scipy.stats.kstwo', () => {
    for (const [branch, n, x, sf, cdf] of KSTWO) {
      assert.ok(pClose(kolmogorovSf(n, x), sf), `${branch}: sf(${n}, ${x}) = ${kolmogorovSf(n, x)}, want ${sf}`);
      assert.ok(pClose(kolmogorovCdf(n, x), cdf), `${branch}: cdf(${n}, ${x}) = ${kolmogorovCdf(n, x)}, want ${cdf}`);
    }
    // n·x² >= 370 with x < 0.5: the survival function is 0
    assert.equal(kolmogorovSf(2000, 0.45), 0);
    assert.equal(kolmogorovSf(5, 0), 1);
    assert.equal(kolmogorovSf(5, 1), 0);
  });

  it('smirnovSf matches scipy.special.smirnov', () => {
    const SMIRNOV: [number, number, number][] = [
      [1, 0.3, 0.7],
      [5, 0.1, 0.85359],
      [5, 0.6, 0.015040000000000005],
      [50, 0.1, 0.34490701996888],
      [50, 0.99, 1.0000000000000444e-100],
      [1000, 0.05, 0.006506037390545166],
      [1000, 0.001, 0.9972857902774867],
      [300000, 0.00273861278752583, 0.011088686638381756],
      [2000000, 0.001, 0.018303432023617325],
    ];
    for (const [n, x, want] of SMIRNOV) {
      const got = smirnovSf(n, x);
      assert.ok(pClose(got, want) && (want > 1e-12 || relErr(got, want) < 1e-9), `smirnov(${n}, ${x}) = ${got}, want ${want}`);
    }
  });

  it("keeps scipy's seam at n·x² = 2.2 (n > 140): a jump of about 4.5e-8, exactly as scipy's", () => {
    const n = 221886;
    const x = Math.sqrt(2.2 / n);
    // scipy.stats.kstwo.sf at x·(1 - 1e-9) and x: 0.024503013983108612, 0.02450305882231008
    assert.ok(pClose(kolmogorovSf(n, x * (1 - 1e-9)), 0.024503013983108612));
    assert.ok(pClose(kolmogorovSf(n, x), 0.02450305882231008));
  });

  it('property: survival functions lie in [0, 1] and do not increase with x (but for the 4.5e-8 seam)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300_000 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 30 }), (n, xs) => {
        xs.sort((p, q) => p - q);
        let prevK = Infinity;
        let prevS = Infinity;
        for (const x of xs) {
          const k = kolmogorovSf(n, x);
          const s = smirnovSf(n, x);
          assert.ok(k >= 0 && k <= 1 && s >= 0 && s <= 1, `n=${n} x=${x}: ${k}, ${s}`);
          assert.ok(k <= prevK + (n > 140 ? 5e-8 : 1e-12), `kolmogorovSf(${n}) increases at ${x}: ${prevK} -> ${k}`);
          assert.ok(s <= prevS + 1e-12, `smirnovSf(${n}) increases at ${x}: ${prevS} -> ${s}`);
          // sf and cdf use different cut-offs on n·x² (scipy's), hence the same seam between them
          assert.ok(Math.abs(k + kolmogorovCdf(n, x) - 1) <= (n > 140 ? 5e-8 : 1e-12), `sf + cdf at n=${n}, x=${x}`);
          prevK = k;
          prevS = s;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('ml.stats ks2: edge cases', () => {
  it('identical samples: D = 0, p = 1 for every alternative and method', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    for (const alternative of ALTERNATIVES) {
      for (const method of METHODS) {
        const r = ks2(xs, [...xs].reverse(), { alternative, method });
        assert.equal(r.statistic, 0);
        assert.equal(r.pValue, 1);
      }
    }
  });

  it('all-equal data: D = 0, p = 1', () => {
    const r = ks2([7, 7, 7], [7, 7]);
    assert.equal(r.statistic, 0);
    assert.equal(r.pValue, 1);
    assert.equal(r.statisticLocation, 7);
  });

  it('n = 1 on both sides', () => {
    const r = ks2([1], [2]);
    assert.deepEqual(r, { statistic: 1, pValue: 1, method: 'exact', statisticLocation: 1, statisticSign: 1 });
    assert.equal(ks2([1], [2], { alternative: 'greater' }).pValue, 0.5);
    // scipy's asymptotic two-sided p is NaN here (round(0.5) = 0 degrees of freedom); weir uses n = 1
    const a = ks2([1], [2], { method: 'asymp' });
    assert.ok(a.pValue >= 0 && a.pValue <= 1);
  });

  it('disjoint samples of equal size: exact two-sided p = 2 / C(2n, n)', () => {
    for (const n of [1, 2, 3, 5, 8, 12]) {
      const a = Array.from({ length: n }, (_, i) => i);
      const b = a.map((v) => v + 100);
      const r = ks2(a, b, { method: 'exact' });
      assert.equal(r.statistic, 1);
      assert.ok(relErr(r.pValue, Math.min(1, 2 / binomial(2 * n, n))) < 1e-12, `n=${n}: ${r.pValue}`);
    }
  });

  it('accepts Float64Array and does not change its inputs', () => {
    const a = Float64Array.of(3, 1, 2);
    const b = [6, 4, 5];
    const r = ks2(a, b);
    assert.deepEqual(Array.from(a), [3, 1, 2]);
    assert.deepEqual(b, [6, 4, 5]);
    assert.equal(r.statistic, 1);
    assert.ok(Math.abs(r.pValue - 0.1) < 1e-15);
  });

  it('±Infinity orders like any value', () => {
    const r = ks2([-Infinity, 0, 1], [2, 3, Infinity], { method: 'asymp' });
    assert.equal(r.statistic, 1);
    assert.equal(r.statisticLocation, 1);
  });

  it('rounds the effective n of the asymptotic p-value half to even (numpy), not half up', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 4.5, 2.4999, 2.5001, 7].map(roundHalfEven), [0, 2, 2, 4, 4, 2, 3, 7]);
    // 3 vs 3: en = 1.5 → 2; 5 vs 5 → 2.5 → 2 (Math.round would give 3)
    assert.equal(ksPValue(0.6, 5, 5, 'two-sided', 'asymp').pValue, kolmogorovSf(2, 0.6));
  });

  it('bad input is a WEIR_INVALID_ARGUMENT WeirError', () => {
    assert.throws(() => ks2([], [1]), isInvalidArgument);
    assert.throws(() => ks2([1], []), isInvalidArgument);
    assert.throws(() => ks2([1, NaN], [1]), isInvalidArgument);
    assert.throws(() => ks2(Float64Array.of(1), Float64Array.of(NaN)), isInvalidArgument);
    assert.throws(() => ks2([1], [2], { alternative: 'two_sided' as KsAlternative }), isInvalidArgument);
    assert.throws(() => ks2([1], [2], { method: 'fast' as KsMethod }), isInvalidArgument);
    assert.throws(() => ks2Sorted([2, 1], [1]), isInvalidArgument);
    assert.throws(() => new KsReference([]), isInvalidArgument);
    assert.throws(() => ksPValue(1.5, 3, 3), isInvalidArgument);
    assert.throws(() => ksPValue(0.5, 0, 3), isInvalidArgument);
  });
});

describe('ml.stats ks2: properties', () => {
  it('the statistic equals a brute-force sup over the pooled points (ties included)', () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const brute = bruteStatistics(a, b);
        const lcm = (a.length / gcdOf(a.length, b.length)) * b.length;
        for (const alternative of ALTERNATIVES) {
          const asymp = ks2(a, b, { alternative, method: 'asymp' });
          assert.ok(Math.abs(asymp.statistic - brute[alternative]) <= 1e-12, `${alternative}: ${asymp.statistic} vs ${brute[alternative]}`);
          const exact = ks2(a, b, { alternative, method: 'exact' });
          assert.equal(exact.statistic, roundHalfEven(brute[alternative] * lcm) / lcm);
          // the location is a pooled point where the statistic is attained
          const t = asymp.statisticLocation;
          const f1 = a.filter((v) => v <= t).length / a.length;
          const f2 = b.filter((v) => v <= t).length / b.length;
          const atT = alternative === 'two-sided' ? Math.abs(f1 - f2) : alternative === 'greater' ? f1 - f2 : f2 - f1;
          if (asymp.statistic > 0) assert.ok(Math.abs(atT - asymp.statistic) <= 1e-12, `${alternative}: D at location ${t} is ${atT}`);
          if (asymp.statistic > 0) assert.equal(asymp.statisticSign, Math.sign(f1 - f2), `${alternative}: sign`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('p-values lie in [0, 1] for every alternative and method', () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        for (const alternative of ALTERNATIVES) {
          for (const method of METHODS) {
            const r = ks2(a, b, { alternative, method });
            assert.ok(r.pValue >= 0 && r.pValue <= 1, `${alternative} ${method}: ${r.pValue}`);
            assert.ok(r.statistic >= 0 && r.statistic <= 1);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('p-values do not increase with the statistic (sizes fixed)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 80 }), (n1, n2) => {
        const lcm = (n1 / gcdOf(n1, n2)) * n2;
        const steps = Math.min(lcm, 400);
        for (const alternative of ALTERNATIVES) {
          for (const method of METHODS) {
            let prev = Infinity;
            for (let k = 0; k <= steps; k++) {
              const p = ksPValue(k / steps, n1, n2, alternative, method).pValue;
              assert.ok(p >= 0 && p <= 1);
              assert.ok(p <= prev + 1e-12, `${n1}v${n2} ${alternative} ${method}: p rises at d=${k / steps}: ${prev} -> ${p}`);
              prev = p;
            }
          }
        }
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  });

  it('exact p-values equal the fraction of all orderings (complete enumeration), every exact method', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.double({ min: 0, max: 1, noNaN: true }), (n1, n2, u) => {
        const g = gcdOf(n1, n2);
        const lcm = (n1 / g) * n2;
        const h = Math.round(u * lcm);
        const all = enumeratedPValues(n1, n2, h);
        for (const alternative of ALTERNATIVES) {
          const want = all[alternative];
          const got = exactKsPValue(n1, n2, g, h, alternative === 'two-sided' ? 'two-sided' : 'one-sided');
          assert.ok(got !== undefined && Math.abs(got - want) <= 1e-12 + 1e-12 * want, `${n1}v${n2} h=${h} ${alternative}: ${got} vs ${want}`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('identical samples (any order) give D = 0 and p = 1', () => {
    fc.assert(
      fc.property(sampleArb, (a) => {
        const r = ks2(a, [...a].reverse());
        assert.equal(r.statistic, 0);
        assert.equal(r.pValue, 1);
      }),
      { numRuns: RUNS },
    );
  });

  it('binomial agrees with exact BigInt values', () => {
    const exact = (N: number, k: number): bigint => {
      let r = 1n;
      for (let i = 1; i <= k; i++) r = (r * BigInt(N - k + i)) / BigInt(i);
      return r;
    };
    for (const [N, k] of [[6, 3], [40, 19], [60, 25], [170, 85], [171, 60], [500, 200], [1000, 500], [1029, 514]] as const) {
      const want = Number(exact(N, k));
      assert.ok(relErr(binomial(N, k), want) < 1e-12, `C(${N}, ${k}) = ${binomial(N, k)}, want ${want}`);
    }
    assert.equal(binomial(1100, 550), Infinity);
  });
});

describe('ml.stats psi: numpy reference values (psi.json)', () => {
  it('covers every case of psi.json', () => {
    assert.ok(PSI_CASES.length >= 4, `expected the 4 cases of psi.json, found ${PSI_CASES.length}`);
  });

  for (const c of PSI_CASES) {
    it(c.name, (t) => {
      const sorted = sortSample(c.reference);
      const raw = Array.from({ length: 9 }, (_, k) => quantileSorted(sorted, (k + 1) / 10));
      assert.deepEqual(raw, c.raw_quantile_edges, 'raw quantile edges, bit for bit');
      const r = psi(c.reference, c.current, { bins: 10 });
      assert.deepEqual(r.edges, c.edges, 'edges, bit for bit');
      assert.deepEqual(r.referenceCounts, c.ref_counts);
      assert.deepEqual(r.currentCounts, c.cur_counts);
      assert.equal(r.terms.length, c.terms.length);
      let maxRel = 0;
      for (let i = 0; i < c.terms.length; i++) {
        assert.ok(relErr(r.terms[i], c.terms[i]) <= 1e-12, `term ${i}: ${r.terms[i]} vs ${c.terms[i]}`);
        maxRel = Math.max(maxRel, relErr(r.terms[i], c.terms[i]));
      }
      assert.ok(relErr(r.psi, c.psi) <= 1e-12, `psi ${r.psi} vs ${c.psi}`);
      t.diagnostic(`max relative error of terms ${maxRel.toExponential(2)}, of psi ${relErr(r.psi, c.psi).toExponential(2)}`);
    });
  }

  it('fixed bins + PsiAccumulator (one at a time, in Float64Array batches) + psiFromCounts give the same', () => {
    for (const c of PSI_CASES) {
      const want = psi(c.reference, c.current);
      const bins = psiBins(c.reference, 10);
      const one = new PsiAccumulator(bins);
      for (const x of c.current) one.add(x);
      const batched = new PsiAccumulator(bins);
      const cur = Float64Array.from(c.current);
      for (let i = 0; i < cur.length; i += 97) batched.addBatch(cur.subarray(i, i + 97));
      assert.deepEqual(one.result(), want);
      assert.deepEqual(batched.result(), want);
      assert.equal(batched.count, c.current.length);
      assert.deepEqual(psiFromCounts(bins, c.cur_counts), want);
      // remove undoes add; reset empties
      batched.add(1e9);
      batched.remove(1e9);
      assert.deepEqual(batched.result(), want);
      batched.reset();
      assert.equal(batched.count, 0);
      assert.throws(() => batched.result(), isInvalidArgument);
    }
  });
});

describe('ml.stats psi: edge cases and properties', () => {
  it('bins are right-closed; out-of-range and infinite current values land in the outer bins', () => {
    const edges = Float64Array.of(1, 2, 3);
    assert.deepEqual([-Infinity, 0, 1, 1.5, 2, 3, 3.0001, Infinity].map((x) => psiBinIndex(edges, x)), [0, 0, 0, 1, 1, 2, 3, 3]);
    const r = psi([1, 2, 3, 4], [-Infinity, 100, Infinity], { bins: 2 });
    assert.deepEqual(r.edges, [2.5]);
    assert.deepEqual(r.currentCounts, [1, 2]);
  });

  it('duplicate edges are dropped (constant reference: 2 bins); bins = 1 gives one bin and PSI 0', () => {
    const r = psi([5, 5, 5, 5], [4, 5, 6]);
    assert.deepEqual(r.edges, [5]);
    assert.deepEqual(r.referenceCounts, [4, 0]);
    assert.deepEqual(r.currentCounts, [2, 1]);
    const one = psi([1, 2, 3], [7, 8], { bins: 1 });
    assert.deepEqual(one.edges, []);
    assert.equal(one.psi, 0);
  });

  it('empty bins are clipped at epsilon, not renormalised', () => {
    const r = psi([1, 2, 3, 4], [1, 1], { bins: 2, epsilon: 0.01 });
    // ref (0.5, 0.5), cur (1, 0 → 0.01)
    const want = (1 - 0.5) * Math.log(1 / 0.5) + (0.01 - 0.5) * Math.log(0.01 / 0.5);
    assert.ok(relErr(r.psi, want) < 1e-15);
  });

  it('bad input is a WEIR_INVALID_ARGUMENT WeirError', () => {
    assert.throws(() => psi([], [1]), isInvalidArgument);
    assert.throws(() => psi([1], []), isInvalidArgument);
    assert.throws(() => psi([1, NaN], [1]), isInvalidArgument);
    assert.throws(() => psi([1, Infinity], [1]), isInvalidArgument);
    assert.throws(() => psi([1, 2], [NaN]), isInvalidArgument);
    assert.throws(() => psi([1, 2], [1], { bins: 0 }), isInvalidArgument);
    assert.throws(() => psi([1, 2], [1], { bins: 2.5 }), isInvalidArgument);
    assert.throws(() => psi([1, 2], [1], { epsilon: 0 }), isInvalidArgument);
    const acc = new PsiAccumulator(psiBins([1, 2, 3]));
    assert.throws(() => acc.add(NaN), isInvalidArgument);
    assert.throws(() => acc.addBatch(Float64Array.of(1, NaN)), isInvalidArgument);
    assert.throws(() => acc.remove(1), isInvalidArgument);
    assert.throws(() => psiFromCounts(psiBins([1, 2, 3]), [1, 2]), isInvalidArgument);
  });

  it('property: PSI >= 0, and 0 for identical distributions (same values in any order)', () => {
    const finiteSample = fc.oneof(
      fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 200 }),
      fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 200 }),
    );
    fc.assert(
      fc.property(finiteSample, finiteSample, fc.integer({ min: 1, max: 20 }), (ref, cur, bins) => {
        const r = psi(ref, cur, { bins });
        assert.ok(r.psi >= 0, `psi ${r.psi}`);
        for (const t of r.terms) assert.ok(t >= 0);
        assert.equal(r.currentCounts.reduce((s, c) => s + c, 0), cur.length);
        assert.equal(r.referenceCounts.reduce((s, c) => s + c, 0), ref.length);
        assert.equal(psi(ref, [...ref].reverse(), { bins }).psi, 0);
        // the same distribution at another sample size: every value twice
        assert.ok(psi(ref, [...ref, ...ref], { bins }).psi < 1e-15);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('ml.stats QuantileSketch', () => {
  /** #values <= x and #values < x in an ascending array. */
  function trueRanks(sorted: Float64Array, x: number): [number, number] {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    let below = lo;
    while (below > 0 && sorted[below - 1] === x) below--;
    return [lo, below];
  }

  /**
   * Streams of 1 to 5000 values from a seeded generator (fast-check's arrays stay short): continuous,
   * heavy ties, and sorted / reversed input (adversarial orders for deterministic compaction).
   */
  const dataArb: fc.Arbitrary<number[]> = fc
    .record({
      n: fc.integer({ min: 1, max: 5000 }),
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
      kind: fc.constantFrom('uniform', 'ties', 'sorted', 'reversed', 'spiky'),
    })
    .map(({ n, seed, kind }) => {
      let state = seed;
      const next = (): number => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return state / 2147483648;
      };
      const out = Array.from({ length: n }, () => (kind === 'ties' ? Math.floor(next() * 20) : kind === 'spiky' ? (next() < 0.3 ? 7 : next() * 1e6 - 5e5) : next()));
      if (kind === 'sorted') out.sort((p, q) => p - q);
      if (kind === 'reversed') out.sort((p, q) => q - p);
      return out;
    });

  function checkSketch(s: QuantileSketch, data: readonly number[]): void {
    const sorted = Float64Array.from(data).sort();
    const n = data.length;
    const bound = s.rankErrorBound();
    assert.equal(s.count, n);
    assert.ok(bound <= QuantileSketch.epsilonBound(s.k, n) * n + 1e-9, `tracked bound ${bound} above the a-priori ${QuantileSketch.epsilonBound(s.k, n) * n}`);
    if (s.isExact) assert.equal(bound, 0);
    assert.equal(s.min, sorted[0]);
    assert.equal(s.max, sorted[n - 1]);
    // rank error at every distinct value and between them
    const queries = new Set<number>(sorted);
    for (let i = 0; i + 1 < n; i += Math.max(1, Math.floor(n / 50))) queries.add((sorted[i] + sorted[i + 1]) / 2);
    for (const x of queries) {
      const [le] = trueRanks(sorted, x);
      assert.ok(Math.abs(s.rank(x) - le) <= bound, `rank(${x}) = ${s.rank(x)}, true ${le}, bound ${bound}`);
      assert.ok(Math.abs(s.cdf(x) - le / n) <= s.epsilon + 1e-12);
    }
    // every quantile: the true rank interval of the answer comes within the bound of q·n
    for (let j = 0; j <= 40; j++) {
      const q = j / 40;
      const v = s.quantile(q);
      const [le, lt] = trueRanks(sorted, v);
      const target = q * n;
      assert.ok(le >= target - bound && lt <= target + bound, `quantile(${q}) = ${v}: true ranks [${lt}, ${le}], target ${target} ± ${bound}`);
      if (s.isExact) assert.equal(v, sorted[Math.max(0, Math.ceil(target) - 1)]);
    }
  }

  it('is exact below its exact limit', () => {
    const s = new QuantileSketch({ k: 16, exactLimit: 100 });
    const data = Array.from({ length: 100 }, (_, i) => (i * 37) % 101);
    s.addBatch(data);
    assert.ok(s.isExact);
    assert.equal(s.rankErrorBound(), 0);
    checkSketch(s, data);
    s.add(1000);
    assert.ok(!s.isExact);
    checkSketch(s, [...data, 1000]);
  });

  it('property: the rank error of every query is within the tracked and the a-priori bound', () => {
    fc.assert(
      fc.property(dataArb, fc.constantFrom(8, 16, 32, 64, 256), fc.constantFrom(0, 10, 500), (data, k, exactLimit) => {
        const s = new QuantileSketch({ k, exactLimit });
        s.addBatch(data);
        checkSketch(s, data);
        assert.ok(s.storedCount <= 2 * k * (Math.floor(Math.log2(Math.max(1, data.length / k))) + 2) + exactLimit);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: merged sketches keep the bound', () => {
    fc.assert(
      fc.property(fc.array(dataArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(8, 32), fc.constantFrom(0, 50), (parts, k, exactLimit) => {
        const merged = new QuantileSketch({ k, exactLimit });
        for (const part of parts) {
          const s = new QuantileSketch({ k, exactLimit });
          s.addBatch(part);
          merged.merge(s);
        }
        checkSketch(merged, parts.flat());
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });

  it('property: ks2Sketch is within εa + εb of the exact statistic, and equals ks2 while both are exact', () => {
    fc.assert(
      fc.property(dataArb, dataArb, fc.constantFrom(8, 32, 128), fc.constantFrom<KsAlternative>('two-sided', 'less', 'greater'), (a, b, k, alternative) => {
        const sa = new QuantileSketch({ k, exactLimit: 200 });
        const sb = new QuantileSketch({ k, exactLimit: 200 });
        sa.addBatch(a);
        sb.addBatch(b);
        const exact = ks2(a, b, { alternative, method: 'asymp' });
        const approx = ks2Sketch(sa, sb, { alternative });
        assert.ok(Math.abs(approx.statistic - exact.statistic) <= approx.errorBound + 1e-12, `${approx.statistic} vs ${exact.statistic} ± ${approx.errorBound}`);
        assert.ok(Math.abs(approx.errorBound - (sa.epsilon + sb.epsilon)) < 1e-15);
        assert.ok(approx.pValueRange[0] <= approx.pValue && approx.pValue <= approx.pValueRange[1]);
        if (sa.isExact && sb.isExact) {
          const { errorBound, pValueRange, ...rest } = approx;
          assert.equal(errorBound, 0);
          assert.deepEqual(rest, ks2(a, b, { alternative }));
          assert.deepEqual(pValueRange, [rest.pValue, rest.pValue]);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('a large stream stays within its stated epsilon (k = 4096, 10^6 values)', () => {
    const s = new QuantileSketch();
    const n = 1_000_000;
    let seed = 12345;
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      data[i] = seed / 2147483648;
    }
    s.addBatch(data);
    assert.ok(s.epsilon <= QuantileSketch.epsilonBound(4096, n));
    assert.ok(QuantileSketch.epsilonBound(4096, n) < 0.002);
    const sorted = data.slice().sort();
    for (let j = 1; j < 100; j++) {
      const x = sorted[Math.floor((j / 100) * n)];
      const [le] = trueRanks(sorted, x);
      assert.ok(Math.abs(s.rank(x) - le) <= s.rankErrorBound());
    }
    assert.ok(s.storedCount < 50_000, `stores ${s.storedCount} values`);
  });

  it('bad input is a WEIR_INVALID_ARGUMENT WeirError', () => {
    assert.throws(() => new QuantileSketch({ k: 7 }), isInvalidArgument);
    assert.throws(() => new QuantileSketch({ k: 4 }), isInvalidArgument);
    assert.throws(() => new QuantileSketch({ exactLimit: -1 }), isInvalidArgument);
    const s = new QuantileSketch();
    assert.throws(() => s.quantile(0.5), isInvalidArgument);
    assert.throws(() => s.add(NaN), isInvalidArgument);
    s.add(1);
    assert.throws(() => s.quantile(1.5), isInvalidArgument);
    assert.throws(() => s.merge(new QuantileSketch({ k: 8 })), isInvalidArgument);
    assert.throws(() => s.merge(s), isInvalidArgument);
    assert.throws(() => ks2Sketch(s, new QuantileSketch()), isInvalidArgument);
  });
});
