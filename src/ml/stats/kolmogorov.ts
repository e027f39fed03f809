/**
 * The finite-n Kolmogorov distribution (two-sided one-sample KS statistic D_n) and the Smirnov
 * distribution (one-sided D_n^+), written for weir after the algorithms scipy uses for
 * `scipy.stats.kstwo` (scipy/stats/_ksstats.py) and `scipy.special.smirnov` (cephes kolmogorov.c).
 *
 * Which method computes Pr(D_n <= x) follows Simard & L'Ecuyer's recipe:
 *  - Ruben–Gambino closed forms for x <= 1/n and x >= 1 - 1/n;
 *  - 2·smirnov(n, x) for x >= 0.5 (exact there: D+ >= x and D- >= x cannot both happen);
 *  - n <= 140: Durbin's matrix (Marsaglia–Tsang–Wang) for n·x² <= 0.754693, Pomeranz's recursion for
 *    n·x² <= 4, else 2·smirnov (Miller's approximation);
 *  - n > 140: for the survival function, 0 for n·x² >= 370 and 2·smirnov for n·x² >= 2.2; otherwise
 *    1 - CDF with the CDF from Durbin's matrix when n <= 100000 and n·x^1.5 <= 1.4, else the Pelz–Good
 *    asymptotic series (1 for n·x² >= 18).
 *
 * Being scipy's recipe, it keeps scipy's seams: for n > 140 the survival function jumps up by about
 * 2·exp(-8·2.2) ≈ 4.5e-8 at n·x² = 2.2, where it switches to 2·smirnov (which drops the term of paths
 * crossing both bounds). Matching scipy was preferred to smoothing it.
 *
 * References:
 *  - Durbin J (1968), "The Probability that the Sample Distribution Function Lies Between Two Parallel
 *    Straight Lines", Ann. Math. Statist. 39, 398–411.
 *  - Marsaglia G, Tsang WW, Wang J (2003), "Evaluating Kolmogorov's Distribution", J. Stat. Softw. 8(18).
 *  - Pomeranz J (1974), "Exact Cumulative Distribution of the Kolmogorov-Smirnov Statistic for Small
 *    Samples (Algorithm 487)", CACM 17(12), 703–704.
 *  - Pelz W, Good IJ (1976), "Approximating the Lower Tail-areas of the Kolmogorov-Smirnov One-sample
 *    Statistic", JRSS B 38(2), 152–156.
 *  - Simard R, L'Ecuyer P (2011), "Computing the Two-Sided Kolmogorov-Smirnov Distribution",
 *    J. Stat. Softw. 39(11).
 *  - Birnbaum ZW, Tingey FH (1951), "One-Sided Confidence Contours for Probability Distribution
 *    Functions", Ann. Math. Statist. 22(4) (the Smirnov sum); van Mulbregt P (2018), arXiv:1802.06966.
 */
import { ldexp } from './sample.js';

const E128 = 128;
const EP128 = 2 ** 128;
const EM128 = 2 ** -128;
const LOG_2PI = Math.log(2 * Math.PI);
const SQRT2PI = Math.sqrt(2 * Math.PI);
const SQRT3 = Math.sqrt(3);
const PI2 = Math.PI ** 2;
const PI4 = Math.PI ** 4;
const PI6 = Math.PI ** 6;
/** exp(x) underflows to 0 below about this. */
const MIN_LOG = -708;
/** cephes MINLOG = log(2**-1022). */
const CEPHES_MINLOG = -708.3964185322641;

const clip01 = (p: number): number => (p < 0 ? 0 : p > 1 ? 1 : p);

/**
 * Survival function of the two-sided one-sample Kolmogorov–Smirnov statistic for sample size `n`:
 * Pr(D_n >= x), as `scipy.stats.kstwo.sf(x, n)`. `ks2` uses it for two-sample asymptotic p-values
 * with n = round(n1·n2 / (n1 + n2)).
 *
 * @example
 * kolmogorovSf(5, 0.6);   // 0.03008 (= 2 * smirnovSf(5, 0.6))
 * kolmogorovSf(120, 0.1); // 0.1694... (Pomeranz's recursion)
 */
export function kolmogorovSf(n: number, x: number): number {
  return kolmogn(n, x, false);
}

/**
 * CDF of the two-sided one-sample Kolmogorov–Smirnov statistic: Pr(D_n <= x) (`scipy.stats.kstwo.cdf`).
 *
 * @example
 * kolmogorovCdf(10, 0.05); // 0 (D_10 >= 1/20 always)
 */
export function kolmogorovCdf(n: number, x: number): number {
  return kolmogn(n, x, true);
}

function select(cdfProb: number, sfProb: number, cdf: boolean): number {
  return clip01(cdf ? cdfProb : sfProb);
}

/** Simard & L'Ecuyer's choice of method (scipy `_kolmogn`). */
function kolmogn(n: number, x: number, cdf: boolean): number {
  if (Number.isNaN(x) || !Number.isInteger(n) || n <= 0) return NaN;
  if (x >= 1) return select(1, 0, cdf);
  if (x <= 0) return select(0, 1, cdf);
  const t = n * x;
  if (t <= 1) {
    // Ruben–Gambino: for 1/2n <= x <= 1/n, Pr(D_n <= x) = n!/n^n (2t - 1)^n.
    if (t <= 0.5) return select(0, 1, cdf);
    let prob: number;
    if (n <= 140) {
      prob = 1;
      for (let i = 1; i <= n; i++) prob *= i * (1 / n) * (2 * t - 1);
    } else {
      prob = Math.exp(logNFactorialOverNPowN(n) + n * Math.log(2 * t - 1));
    }
    return select(prob, 1 - prob, cdf);
  }
  if (t >= n - 1) {
    // Ruben–Gambino: Pr(D_n >= x) = 2 (1 - x)^n for x >= 1 - 1/n.
    const prob = 2 * (1 - x) ** n;
    return select(1 - prob, prob, cdf);
  }
  if (x >= 0.5) {
    // Exact: for x >= 0.5 the events D+ >= x and D- >= x are disjoint.
    const prob = 2 * smirnovSf(n, x);
    return select(1 - prob, prob, cdf);
  }
  const nxSquared = t * x;
  if (n <= 140) {
    if (nxSquared <= 0.754693) {
      const prob = durbinMatrixCdf(n, x);
      return select(prob, 1 - prob, cdf);
    }
    if (nxSquared <= 4) {
      const prob = pomeranzCdf(n, x);
      return select(prob, 1 - prob, cdf);
    }
    // Miller's approximation: twice the one-sided tail.
    const prob = 2 * smirnovSf(n, x);
    return select(1 - prob, prob, cdf);
  }
  // CDF and SF have different cut-offs on n·x² (the SF keeps its small values accurately).
  if (!cdf) {
    if (nxSquared >= 370) return 0;
    if (nxSquared >= 2.2) return clip01(2 * smirnovSf(n, x));
  }
  let cdfProb: number;
  if (nxSquared >= 18) cdfProb = 1;
  else if (n <= 100000 && n * x ** 1.5 <= 1.4) cdfProb = durbinMatrixCdf(n, x);
  else cdfProb = pelzGoodCdf(n, x);
  return select(cdfProb, 1 - cdfProb, cdf);
}

// Stirling coefficients B_2j / (2j (2j - 1)) for j = 8..1 (highest power first, for Horner).
const STIRLING = [
  -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
  -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
];

/** log(n! / n^n) by Stirling's series, with n·log(n) removed up front to avoid cancellation. */
function logNFactorialOverNPowN(n: number): number {
  const rn = 1 / n;
  const r2 = rn / n;
  let poly = 0;
  for (const c of STIRLING) poly = poly * r2 + c;
  return Math.log(n) / 2 - n + LOG_2PI / 2 + rn * poly;
}

/**
 * Pr(D_n <= d) by Durbin's matrix method as made practical by Marsaglia, Tsang & Wang (2003): write
 * d = (k - h)/n with integer k and 0 <= h < 1, build the (2k-1)×(2k-1) matrix H and take the (k,k)
 * entry of n!/n^n · H^n, by repeated squaring with explicit power-of-two scaling. O(k³ log n).
 */
function durbinMatrixCdf(n: number, d: number): number {
  if (d >= 1) return 1;
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;

  // v: first column (and, reversed, last row) of H; w[j] = 1/j!.
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j; // may underflow: harmless
    v[j - 1] = (1 - h ** j) * fac;
  }
  const tt = Math.max(2 * h - 1, 0) ** m - 2 * h ** m;
  v[m - 1] = (1 + tt) * fac;

  let H = new Float64Array(m * m);
  for (let i = 1; i < m; i++) {
    for (let r = i - 1; r < m; r++) H[r * m + i] = w[r - (i - 1)];
  }
  for (let r = 0; r < m; r++) H[r * m] = v[r];
  for (let c = 0; c < m; c++) H[(m - 1) * m + c] = v[m - 1 - c];

  let P = new Float64Array(m * m);
  for (let i = 0; i < m; i++) P[i * m + i] = 1;
  let scratch = new Float64Array(m * m);
  let expnt = 0; // scaling of P
  let hExpnt = 0; // scaling of H
  const kk = (k - 1) * m + (k - 1);
  for (let nn = n; nn > 0; nn = Math.floor(nn / 2)) {
    if (nn % 2 === 1) {
      matMul(P, H, scratch, m);
      [P, scratch] = [scratch, P];
      expnt += hExpnt;
    }
    matMul(H, H, scratch, m);
    [H, scratch] = [scratch, H];
    hExpnt *= 2;
    if (Math.abs(H[kk]) > EP128) {
      for (let i = 0; i < H.length; i++) H[i] /= EP128;
      hExpnt += E128;
    }
  }
  let p = P[kk];
  // Multiply by n!/n^n, keeping p away from underflow.
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < EM128) {
      p *= EP128;
      expnt -= E128;
    }
  }
  if (expnt !== 0) p = ldexp(p, expnt);
  return clip01(p);
}

function matMul(a: Float64Array, b: Float64Array, out: Float64Array, m: number): void {
  out.fill(0);
  for (let i = 0; i < m; i++) {
    const io = i * m;
    for (let l = 0; l < m; l++) {
      const ail = a[io + l];
      if (ail === 0) continue;
      const lo = l * m;
      for (let j = 0; j < m; j++) out[io + j] += ail * b[lo + j];
    }
  }
}

/** Endpoints of the non-zero interval of row i in Pomeranz's recursion. */
function pomeranzJ1J2(i: number, n: number, ll: number, ceilf: number, roundf: number): [number, number] {
  let j1: number;
  let j2: number;
  if (i === 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const ip1div2 = Math.floor((i + 1) / 2);
    const ip1mod2 = (i + 1) % 2;
    if (ip1mod2 === 0) {
      // i is odd
      if (ip1div2 === n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = ip1div2 - 1 - ll - roundf - 1;
        j2 = ip1div2 + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = ip1div2 - 1 - ll - 1;
      j2 = ip1div2 + ll + roundf - 1;
    }
  }
  return [Math.max(j1 + 2, 0), Math.min(j2, n)];
}

/**
 * Pr(D_n <= x) by Pomeranz's (1974) recursion: 2n+1 rows, each the convolution of the previous row with
 * (unnormalised) Poisson probabilities of three kinds; only a short band of each row is non-zero, and
 * rows are rescaled by powers of two to avoid underflow. The answer is n! times the last entry.
 */
function pomeranzCdf(n: number, x: number): number {
  const t = n * x;
  const ll = Math.floor(t);
  const f = t - ll;
  const g = Math.min(f, 1 - f);
  const ceilf = f > 0 ? 1 : 0;
  const roundf = f > 0.5 ? 1 : 0;
  const npwrs = 2 * (ll + 1);
  // (g/n)^m/m!, (2g/n)^m/m!, ((1-2g)/n)^m/m!: Poisson probabilities without their normalising factor.
  const gpower = new Float64Array(npwrs);
  const twogpower = new Float64Array(npwrs);
  const onem2gpower = new Float64Array(npwrs);
  gpower[0] = 1;
  twogpower[0] = 1;
  onem2gpower[0] = 1;
  const gOverN = g / n;
  const twoGOverN = (2 * g) / n;
  const oneMinus2GOverN = (1 - 2 * g) / n;
  for (let m = 1; m < npwrs; m++) {
    gpower[m] = (gpower[m - 1] * gOverN) / m;
    twogpower[m] = (twogpower[m - 1] * twoGOverN) / m;
    onem2gpower[m] = (onem2gpower[m - 1] * oneMinus2GOverN) / m;
  }

  let V0 = new Float64Array(npwrs);
  let V1 = new Float64Array(npwrs);
  V1[0] = 1;
  let expnt = 0;
  let [j1, j2] = pomeranzJ1J2(0, n, ll, ceilf, roundf);
  for (let i = 1; i < 2 * n + 2; i++) {
    const k1 = j1; // each row is stored from its own j1
    [V0, V1] = [V1, V0];
    V1.fill(0);
    [j1, j2] = pomeranzJ1J2(i, n, ll, ceilf, roundf);
    const pwrs = i === 1 || i === 2 * n + 1 ? gpower : i % 2 === 1 ? twogpower : onem2gpower;
    const len = Math.min(j2 - k1 + 1, npwrs);
    if (j2 - k1 + 1 > 0) {
      const convStart = j1 - k1;
      const convLen = j2 - j1 + 1;
      let max = 0;
      for (let q = 0; q < convLen; q++) {
        // entry c = convStart + q of the full convolution of V0[0:len] and pwrs[0:len]
        const c = convStart + q;
        let s = 0;
        const lo = Math.max(0, c - len + 1);
        const hi = Math.min(c, len - 1);
        for (let a = lo; a <= hi; a++) s += V0[a] * pwrs[c - a];
        V1[q] = s;
        if (s > max) max = s;
      }
      if (max > 0 && max < EM128) {
        for (let q = 0; q < convLen; q++) V1[q] *= EP128;
        expnt -= E128;
      }
    }
  }
  // The last row starts at its j1; the answer is its entry for index n.
  let ans = V1[n - j1];
  for (let m = 1; m <= n; m++) {
    if (Math.abs(ans) > EP128) {
      ans *= EM128;
      expnt += E128;
    }
    ans *= m;
  }
  if (expnt !== 0) ans = ldexp(ans, expnt);
  return clip01(ans);
}

/**
 * Pelz & Good's (1976) approximation of Pr(D_n <= x): the Li-Chien/Korolyuk expansion
 * K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5 (z = x√n), each term rewritten with the Jacobi theta
 * functional equation into series in exp(-π²/8z²) that converge fast for small z.
 */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z3 = z ** 3;
  const z4 = z ** 4;
  const z6 = z ** 6;
  const qlog = -PI2 / 8 / z2;
  if (qlog < MIN_LOG) return 0;
  let q = Math.exp(qlog);

  const k1a = -z2;
  const k1b = PI2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * PI2) / 4;
  const k2c = (PI4 * (1 - 2 * z2)) / 16;
  const k3d = (PI6 * (5 - 30 * z2)) / 64;
  const k3c = (PI4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (PI2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z ** 8;

  // Horner scheme in q^8 over odd m = 2k - 1.
  const K = [0, 0, 0, 0];
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qpower = q ** (8 * k);
    K[0] = K[0] * qpower + 1;
    K[1] = K[1] * qpower + (k1a + k1b * m2);
    K[2] = K[2] * qpower + (k2a + k2b * m2 + k2c * m4);
    K[3] = K[3] * qpower + (k3a + k3b * m2 + k3c * m4 + k3d * m6);
  }
  const div = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10];
  for (let i = 0; i < 4; i++) K[i] = (K[i] * q * SQRT2PI) / div[i];

  // The remaining terms of K2 and K3 run over all integers k.
  q = Math.exp(-PI2 / 2 / z2);
  const sqrt3z = SQRT3 * z;
  let k2extra = 0;
  let k3extra = 0;
  for (let k = maxk; k > 0; k--) {
    const k2 = k * k;
    const qp = q ** k2;
    const kpi = Math.PI * k;
    k2extra += k2 * qp;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp;
  }
  K[2] += (k2extra * PI2 * SQRT2PI) / (-36 * z3);
  K[3] += (k3extra * PI2 * SQRT2PI) / (216 * z6);
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += K[i] / n ** (i / 2);
  return sum;
}

/**
 * Survival function of the one-sided one-sample KS statistic: Pr(D_n^+ >= x), as
 * `scipy.special.smirnov(n, x)`. Computed with the Smirnov / Birnbaum–Tingey sum
 * x · Σ_{v=0}^{⌊n(1-x)⌋} C(n,v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v), term by term in log space (all terms
 * are positive, so the sum has no cancellation), with the closed forms for x <= 1/n and x >= 1 - 1/n.
 *
 * @example
 * smirnovSf(5, 0.6); // 0.01504
 */
export function smirnovSf(n: number, x: number): number {
  if (!(Number.isInteger(n) && n > 0 && x >= 0 && x <= 1)) return NaN;
  if (n === 1) return 1 - x;
  if (x === 0) return 1;
  if (x === 1) return 0;
  // floor(n·x) and its fractional part alpha, from the exact product (Dekker's two-product).
  const nx = n * x;
  const nxErr = twoProductError(n, x);
  let nxfl = Math.floor(nx);
  let alpha = nx - nxfl + nxErr;
  if (alpha < 0) {
    nxfl -= 1;
    alpha += 1;
  }
  if (alpha >= 1) {
    nxfl += 1;
    alpha = 0;
  }
  // Last term of the sum; when n·x is an integer the term at v = n - n·x is 0 and is left out.
  const last = n - nxfl - 1;
  if (nxfl === 0 || (nxfl === 1 && alpha === 0)) {
    // x <= 1/n: Pr(D+ < x) = x (1 + x)^(n-1)
    return clip01(1 - x * (1 + x) ** (n - 1));
  }
  if (-2 * n * x * x < CEPHES_MINLOG) return 0;
  if (nxfl >= n - 1) return clip01((1 - x) ** n);
  if (n > 1_000_000) {
    // Too many terms: p ≈ exp(-(6nx + 1)² / 18n).
    const logp = -((6 * n * x + 1) ** 2) / 18 / n;
    return clip01(logp < -Math.LN2 ? Math.exp(logp) : 1 + Math.expm1(logp));
  }
  let sum = 0;
  let sumC = 0; // Neumaier compensation of sum
  // log C(n, v), accumulated with Neumaier compensation: the running value grows to ~n while each
  // increment is small, and plain summation would drift by ~n·eps per step (1e-8 relative at n = 3e5)
  let logC = 0;
  let logCc = 0;
  const nTerms = last + 1;
  const vmid = Math.floor(n / 2);
  for (let v = 0; v < nTerms; v++) {
    // x + v/n and 1 - x - v/n from the integer and fractional parts of n·x, to avoid cancellation.
    const a = (nxfl + v + alpha) / n;
    const b = (n - nxfl - v - alpha) / n;
    let term: number;
    if (v === 0) term = Math.exp(n * Math.log1p(-x)) / x;
    else term = b > 0 ? Math.exp(logC + logCc + (v - 1) * Math.log(a) + (n - v) * Math.log(b)) : 0;
    const s = sum + term;
    sumC += Math.abs(sum) >= Math.abs(term) ? sum - s + term : term - s + sum;
    sum = s;
    if (term !== 0) {
      // terms decrease from here on: stop once the rest cannot matter
      if (4 * (nTerms - v) * term < Number.EPSILON * sum && v !== nTerms - 1) break;
    } else if (v > vmid) {
      break;
    }
    const inc = Math.log((n - v) / (v + 1));
    const lc = logC + inc;
    logCc += Math.abs(logC) >= Math.abs(inc) ? logC - lc + inc : inc - lc + logC;
    logC = lc;
  }
  return clip01(x * (sum + sumC));
}

/** The rounding error of a*b (a*b = fl(a*b) + error exactly), by Dekker's splitting. */
function twoProductError(a: number, b: number): number {
  const p = a * b;
  const SPLIT = 134217729; // 2^27 + 1
  let t = SPLIT * a;
  const ahi = t - (t - a);
  const alo = a - ahi;
  t = SPLIT * b;
  const bhi = t - (t - b);
  const blo = b - bhi;
  return ahi * bhi - p + ahi * blo + alo * bhi + alo * blo;
}
