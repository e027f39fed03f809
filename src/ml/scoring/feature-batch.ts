/**
 * The rows a model scores in one call: `rows × width` features in one `Float32Array`, row-major
 * (what a `[rows, width]` tensor is made of, without a copy per record).
 *
 * @example
 * ml.fn(async (batch) => {
 *   const out = new Float32Array(batch.rows);
 *   for (let i = 0; i < batch.rows; i++) out[i] = batch.data[i * batch.width] > 100 ? 1 : 0;
 *   return out;
 * }, { name: 'rule', version: '1' })
 */
export class FeatureBatch {
  constructor(
    /** The features, row-major: row `i` is `data[i * width] .. data[i * width + width - 1]`. */
    readonly data: Float32Array,
    readonly rows: number,
    readonly width: number,
  ) {}

  /** Row `i` as a view into {@link data} (no copy). */
  row(i: number): Float32Array {
    return this.data.subarray(i * this.width, (i + 1) * this.width);
  }

  /** The rows as plain arrays (copies: for scorers that want `number[][]`). */
  toArrays(): number[][] {
    const out = new Array<number[]>(this.rows);
    for (let i = 0; i < this.rows; i++) out[i] = Array.from(this.row(i));
    return out;
  }
}
