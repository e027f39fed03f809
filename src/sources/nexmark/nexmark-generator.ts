import { WeirError } from '../../errors.js';
import type { NexmarkAuction, NexmarkBid, NexmarkEvent, NexmarkEventOf, NexmarkKind, NexmarkPerson } from './nexmark-model.js';

/** Options of the Nexmark generator ({@link NexmarkGenerator}, `sources.nexmark`). */
export interface NexmarkOptions<K extends NexmarkKind = NexmarkKind> {
  /** How many events to produce, of the requested `kinds` (default: unbounded). */
  events?: number;
  /** The same seed gives the same events (default 1). */
  seed?: number;
  /**
   * Event-time rate: event number `n` has `dateTime = baseTime + floor(n * 1000 / eventsPerSecond)`
   * (default 10_000_000, the Flink Nexmark setup: 0.1 µs of event time per event).
   */
  eventsPerSecond?: number;
  /** Event time of event number 0, epoch ms (default 0). */
  baseTime?: number;
  /** Id of the first event; ids pick the kind and seed each event's randomness (default 0). */
  firstEventId?: number;
  /**
   * Only emit these kinds (default all). The numbering is the full stream's, so a bid has the same
   * auction, bidder, price and time whether persons and auctions are emitted or not.
   */
  kinds?: readonly K[];
  /** Length of the `extra` padding of each event, one shared string (default 16). */
  extraBytes?: number;
  /**
   * Nexmark's out-of-orderness: events are permuted within groups of this many consecutive event
   * numbers (timestamps and ids move together), so event time goes back by up to
   * `(outOfOrderGroupSize - 1) * 1000 / eventsPerSecond` ms (default 1: in order). Must not be a
   * multiple of 953.
   */
  outOfOrderGroupSize?: number;
  /** One bid in this many is NOT for a hot auction (default 2, as Nexmark). */
  hotAuctionRatio?: number;
  /** One bid in this many is NOT by a hot bidder (default 4). */
  hotBiddersRatio?: number;
  /** One auction in this many is NOT by a hot seller (default 4). */
  hotSellersRatio?: number;
  /** Bids go to one of the last this-many auctions when not to a hot one (default 100). */
  numInFlightAuctions?: number;
  /** Sellers and bidders are drawn from the last this-many persons (default 1000). */
  numActivePeople?: number;
  /**
   * How many not-yet-generated person/auction ids a reference may use. Nexmark uses 10 (references to
   * the future); the default 0 keeps every reference to an event already generated.
   */
  idLead?: number;
}

const PERSON_PROPORTION = 1;
const AUCTION_PROPORTION = 3;
const PROPORTION_DENOMINATOR = 50; // + 46 bids
const FIRST_PERSON_ID = 1000;
const FIRST_AUCTION_ID = 1000;
const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
/** Hot sellers / bidders / auctions are the first of each batch of this many. */
const HOT_BATCH = 100;
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'] as const;
const HOT_CHANNELS_RATIO = 2;
const CHANNELS = 10_000;
const STRING_POOL = 1024;
const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend', 'Redmond', 'Seattle', 'Kent', 'Cheyenne'];
const FIRST_NAMES = ['Peter', 'Paul', 'Luke', 'John', 'Saul', 'Vicky', 'Kate', 'Julie', 'Sarah', 'Deiter', 'Walter'];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const NAMES = FIRST_NAMES.flatMap((f) => LAST_NAMES.map((l) => `${f} ${l}`));

const KIND_BIT: Record<NexmarkKind, number> = { person: 1, auction: 2, bid: 4 };
const TWO_32 = 4294967296;
const TWO_30 = 1073741824;
const INV_2_30 = 1 / TWO_30;
const SIX_LN10 = 6 * Math.LN10;

/** The last person id (base 0) generated at or before event `id` (the current one for a person event). */
function lastBase0PersonId(id: number): number {
  const epoch = Math.floor(id / PROPORTION_DENOMINATOR);
  let offset = id - epoch * PROPORTION_DENOMINATOR;
  if (offset >= PERSON_PROPORTION) offset = PERSON_PROPORTION - 1;
  return epoch * PERSON_PROPORTION + offset;
}

/** The last auction id (base 0) generated at or before event `id` (-1 before the first one). */
function lastBase0AuctionId(id: number): number {
  let epoch = Math.floor(id / PROPORTION_DENOMINATOR);
  let offset = id - epoch * PROPORTION_DENOMINATOR;
  if (offset < PERSON_PROPORTION) {
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) {
    offset = AUCTION_PROPORTION - 1;
  } else {
    offset -= PERSON_PROPORTION;
  }
  return epoch * AUCTION_PROPORTION + offset;
}

/** A 32-bit avalanche of `x` (murmur3's finalizer). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Uniform integer in [0, n) from a uniform 30-bit `r` (n < 2^31). */
function uniformInt(r: number, n: number): number {
  return (r * INV_2_30 * n) | 0;
}

/** The first event number after `n` whose timestamp (ms) is later than event `n`'s. */
function nextTick(n: number, eps: number): number {
  const ms = Math.floor((n * 1000) / eps);
  let t = Math.max(n + 1, Math.ceil(((ms + 1) * eps) / 1000));
  // Guard against rounding in the division: step to the exact boundary.
  while (t > n + 1 && Math.floor(((t - 1) * 1000) / eps) > ms) t--;
  while (Math.floor((t * 1000) / eps) <= ms) t++;
  return t;
}

/** `10^(6 * i / 4096)`: the high 12 bits of a price draw. */
const PRICE_HI = Float64Array.from({ length: 4096 }, (_, i) => Math.pow(10, (6 * i) / 4096));
const LO_SCALE = SIX_LN10 / TWO_30;

/**
 * Cents, log-uniform from $1 to $1M: Nexmark's `round(10^(6u) * 100)` with `u = r / 2^30`, computed
 * as a table entry for the high 12 bits of `r` times `e^x` (a cubic, x < 0.0034) for the low 18:
 * `Math.pow`/`Math.exp` per bid cost more than the rest of the bid.
 */
function priceOf(r: number): number {
  const x = (r & 0x3ffff) * LO_SCALE;
  // `(v + 0.5) | 0` is Math.round for 0 < v < 2^31, and much cheaper in V8.
  return (PRICE_HI[r >>> 18] * (1 + x * (1 + x * (0.5 + x * (1 / 6)))) * 100 + 0.5) | 0;
}

function positiveInt(v: number | undefined, dflt: number, what: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark ${what} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/** Largest ratio / pool option: the bid path works on 30-bit draws. */
const MAX_RATIO = 1 << 20;

/**
 * A deterministic Nexmark event generator, after the Beam/Flink `NexmarkGenerator`: of every 50
 * event ids, 1 is a person, 3 are auctions and 46 are bids; sellers and bidders are recent persons,
 * bids go to recent auctions, with hot auctions, bidders and sellers. Each event's randomness is
 * seeded by its id (and the seed), so an event does not depend on which others were generated.
 * Synchronous and allocation-light: one object per event, strings come from pools.
 *
 * @example
 * const g = new NexmarkGenerator({ kinds: ['bid'], events: 1000, seed: 7 });
 * const bids = g.next(1000); // NexmarkBid[]
 */
export class NexmarkGenerator<K extends NexmarkKind = NexmarkKind> {
  private readonly limit: number;
  private readonly eventsPerSecond: number;
  private readonly baseTime: number;
  private readonly firstEventId: number;
  private readonly mask: number;
  private readonly group: number;
  private readonly hotAuctionRatio: number;
  private readonly hotBiddersRatio: number;
  private readonly hotSellersRatio: number;
  private readonly inFlight: number;
  private readonly activePeople: number;
  private readonly lead: number;
  private readonly seedHash: number;
  private readonly extra: string;
  /** Channel pool, filled on first use: the hot channels, then `channel-0` ... `channel-9999`. */
  private readonly channelNames: (string | undefined)[] = new Array<string | undefined>(HOT_CHANNELS.length + CHANNELS);
  private readonly channelUrls: (string | undefined)[] = new Array<string | undefined>(HOT_CHANNELS.length + CHANNELS);
  private readonly itemNames: (string | undefined)[] = new Array<string | undefined>(STRING_POOL);
  private readonly descriptions: (string | undefined)[] = new Array<string | undefined>(STRING_POOL);
  /** PRNG state of the event being built (mulberry32). */
  private s = 0;
  /** Next event number (over all kinds). */
  private n = 0;
  private emitted = 0;

  constructor(opts: NexmarkOptions<K> = {}) {
    const events = opts.events ?? Infinity;
    if (!(events >= 0) || (events !== Infinity && !Number.isInteger(events))) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark events must be a whole number >= 0, got ${opts.events}`);
    }
    this.limit = events;
    const eps = opts.eventsPerSecond ?? 10_000_000;
    if (!(eps > 0 && Number.isFinite(eps))) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark eventsPerSecond must be > 0, got ${opts.eventsPerSecond}`);
    this.eventsPerSecond = eps;
    this.baseTime = opts.baseTime ?? 0;
    if (!Number.isFinite(this.baseTime)) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark baseTime must be a finite epoch ms, got ${opts.baseTime}`);
    this.firstEventId = positiveInt(opts.firstEventId, 0, 'firstEventId', 0);
    const kinds = opts.kinds ?? (['person', 'auction', 'bid'] as const);
    let mask = 0;
    for (const k of kinds) {
      const bit = KIND_BIT[k as NexmarkKind];
      if (bit === undefined) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark kinds: unknown kind ${JSON.stringify(k)} (use 'person', 'auction', 'bid')`);
      mask |= bit;
    }
    if (mask === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'nexmark kinds must not be empty');
    this.mask = mask;
    this.group = positiveInt(opts.outOfOrderGroupSize, 1, 'outOfOrderGroupSize');
    if (this.group % 953 === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark outOfOrderGroupSize must not be a multiple of 953, got ${this.group}`);
    this.hotAuctionRatio = positiveInt(opts.hotAuctionRatio, 2, 'hotAuctionRatio', 1, MAX_RATIO);
    this.hotBiddersRatio = positiveInt(opts.hotBiddersRatio, 4, 'hotBiddersRatio', 1, MAX_RATIO);
    this.hotSellersRatio = positiveInt(opts.hotSellersRatio, 4, 'hotSellersRatio', 1, MAX_RATIO);
    this.inFlight = positiveInt(opts.numInFlightAuctions, 100, 'numInFlightAuctions', 1, MAX_RATIO);
    this.activePeople = positiveInt(opts.numActivePeople, 1000, 'numActivePeople', 1, MAX_RATIO);
    this.lead = positiveInt(opts.idLead, 0, 'idLead', 0, MAX_RATIO);
    const seed = opts.seed ?? 1;
    if (!Number.isFinite(seed)) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark seed must be a finite number, got ${opts.seed}`);
    this.seedHash = mix32(mix32(seed >>> 0) ^ Math.floor(seed / TWO_32));
    const extraBytes = positiveInt(opts.extraBytes, 16, 'extraBytes', 0);
    this.reseed(0x5eed);
    this.extra = this.nextExactString(extraBytes);
    HOT_CHANNELS.forEach((name, i) => {
      this.reseed(0xbeef + i);
      this.channelNames[i] = name;
      this.channelUrls[i] = this.baseUrl();
    });
  }

  /** Events emitted so far. */
  get count(): number {
    return this.emitted;
  }

  /** True once `events` events were emitted. */
  get done(): boolean {
    return this.emitted >= this.limit;
  }

  /** The next up to `max` events of the requested kinds, in generation order ([] when done). */
  next(max: number): NexmarkEventOf<K>[] {
    const want = Math.min(max, this.limit - this.emitted);
    const out: NexmarkEvent[] = [];
    if (!(want > 0)) return out as NexmarkEventOf<K>[];
    if (this.group === 1) this.fillInOrder(out, want);
    else this.fillShuffled(out, want);
    this.emitted += out.length;
    return out as NexmarkEventOf<K>[];
  }

  /**
   * Events in event-number order. The proportion epoch, the offset in it and the timestamp are
   * stepped, not divided out, per event (the divisions cost as much as a quarter of a bid).
   */
  private fillInOrder(out: NexmarkEvent[], want: number): void {
    const mask = this.mask;
    const eps = this.eventsPerSecond;
    const base = this.baseTime;
    let n = this.n;
    let id = this.firstEventId + n;
    let epoch = Math.floor(id / PROPORTION_DENOMINATOR);
    let rem = id - epoch * PROPORTION_DENOMINATOR;
    let ts = base + Math.floor((n * 1000) / eps);
    let tick = nextTick(n, eps);
    let k = 0;
    while (k < want) {
      if (n >= tick) {
        ts = base + Math.floor((n * 1000) / eps);
        tick = nextTick(n, eps);
      }
      if (rem >= PERSON_PROPORTION + AUCTION_PROPORTION) {
        if ((mask & 4) !== 0) {
          out.push(this.bid(id, epoch, ts));
          k++;
        }
      } else if (rem >= PERSON_PROPORTION) {
        if ((mask & 2) !== 0) {
          out.push(this.auction(id, ts, n));
          k++;
        }
      } else if ((mask & 1) !== 0) {
        out.push(this.person(id, ts));
        k++;
      }
      n++;
      id++;
      if (++rem === PROPORTION_DENOMINATOR) {
        rem = 0;
        epoch++;
      }
    }
    this.n = n;
  }

  /** Nexmark's out-of-orderness: each group of `group` event numbers is permuted (ids and times alike). */
  private fillShuffled(out: NexmarkEvent[], want: number): void {
    const mask = this.mask;
    const group = this.group;
    const first = this.firstEventId;
    const eps = this.eventsPerSecond;
    const base = this.baseTime;
    let n = this.n;
    let k = 0;
    while (k < want) {
      const a = n - (n % group) + ((n * 953) % group);
      n++;
      const id = first + a;
      const epoch = Math.floor(id / PROPORTION_DENOMINATOR);
      const rem = id - epoch * PROPORTION_DENOMINATOR;
      if (rem >= PERSON_PROPORTION + AUCTION_PROPORTION) {
        if ((mask & 4) === 0) continue;
        out.push(this.bid(id, epoch, base + Math.floor((a * 1000) / eps)));
      } else if (rem >= PERSON_PROPORTION) {
        if ((mask & 2) === 0) continue;
        out.push(this.auction(id, base + Math.floor((a * 1000) / eps), a));
      } else {
        if ((mask & 1) === 0) continue;
        out.push(this.person(id, base + Math.floor((a * 1000) / eps)));
      }
      k++;
    }
    this.n = n;
  }

  /**
   * The bid with event id `id` (in proportion epoch `epoch`). Bids are 92% of the stream, so this is
   * the hot path, kept free of unpredictable branches (a mispredicted hot/cold choice costs as much as
   * the rest of the bid): xorshift32 steps from the event's hash, in a local; the first gives a
   * uniform fraction whose leading digits make the successive choices (`f *= n; d = f | 0; f -= d`
   * picks `d` in [0, n) and keeps the remaining digits); both the hot and the cold candidate are
   * computed and one is selected arithmetically; prices come from a table, strings from pools.
   */
  private bid(id: number, epoch: number, ts: number): NexmarkBid {
    let s = this.hashOf(id) | 1; // xorshift state must not be 0
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    let f = (s >>> 2) * INV_2_30;
    let d: number;
    // The last auction / person generated before this bid: the last ones of this epoch.
    const lastAuction = epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1;
    const lastPerson = epoch * PERSON_PROPORTION + PERSON_PROPORTION - 1;
    // P(hot auction) = 1 - 1/hotAuctionRatio: the first auction of the last batch of HOT_BATCH.
    f *= this.hotAuctionRatio;
    d = f | 0;
    f -= d;
    const hotAuction = (d + 0x3fffffff) >>> 30; // 1 when d > 0: no branch
    const minAuction = Math.max(lastAuction - this.inFlight, 0);
    f *= lastAuction - minAuction + 1 + this.lead;
    d = f | 0;
    f -= d;
    const coldAuction = minAuction + d;
    const auction = coldAuction + hotAuction * (lastAuction - (lastAuction % HOT_BATCH) - coldAuction);
    // P(hot bidder) = 1 - 1/hotBiddersRatio: the second person of the last batch (so hot bidders and
    // hot sellers differ), clamped to existing ids.
    f *= this.hotBiddersRatio;
    d = f | 0;
    f -= d;
    const hotBidder = (d + 0x3fffffff) >>> 30;
    const numPeople = lastPerson + 1;
    const active = Math.min(numPeople, this.activePeople);
    // A draw of its own: numActivePeople may be large, the first fraction has ~20 digits left here.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const coldBidder = numPeople - active + uniformInt(s >>> 2, active + this.lead);
    const bidder = coldBidder + hotBidder * (Math.min(lastPerson - (lastPerson % HOT_BATCH) + 1, lastPerson + this.lead) - coldBidder);
    // P(hot channel) = 1 - 1/HOT_CHANNELS_RATIO; channels 0..3 of the pool are the hot ones.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    f = (s >>> 2) * INV_2_30 * HOT_CHANNELS_RATIO;
    d = f | 0;
    f -= d;
    const hotChannel = (d + 0x3fffffff) >>> 30;
    const cold = HOT_CHANNELS.length + ((f * CHANNELS) | 0);
    const c = cold + hotChannel * (((f * HOT_CHANNELS.length) | 0) - cold);
    const channel = this.channelNames[c] ?? this.makeChannel(c);
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return {
      kind: 'bid',
      auction: auction + FIRST_AUCTION_ID,
      bidder: bidder + FIRST_PERSON_ID,
      price: priceOf(s >>> 2),
      channel,
      url: this.channelUrls[c]!,
      dateTime: ts,
      extra: this.extra,
    };
  }

  private auction(id: number, ts: number, eventNumber: number): NexmarkAuction {
    this.reseed(id);
    const lastPerson = lastBase0PersonId(id);
    const seller = this.nextInt(this.hotSellersRatio) > 0 ? Math.floor(lastPerson / HOT_BATCH) * HOT_BATCH : this.nextBase0PersonId(lastPerson);
    const category = FIRST_CATEGORY_ID + this.nextInt(NUM_CATEGORIES);
    const initialBid = this.nextPrice();
    // Nexmark: an average length of the time until `numInFlightAuctions` more auctions exist.
    const eventsForAuctions = Math.floor((this.inFlight * PROPORTION_DENOMINATOR) / AUCTION_PROPORTION);
    const horizon = this.baseTime + Math.floor(((eventNumber + eventsForAuctions) * 1000) / this.eventsPerSecond) - ts;
    const expires = ts + 1 + this.nextInt(Math.max(horizon * 2, 1));
    const i = this.nextInt(STRING_POOL);
    const j = this.nextInt(STRING_POOL);
    const reserve = initialBid + this.nextPrice();
    return {
      kind: 'auction',
      id: lastBase0AuctionId(id) + FIRST_AUCTION_ID,
      itemName: this.itemNames[i] ?? this.makeItemName(i),
      description: this.descriptions[j] ?? this.makeDescription(j),
      initialBid,
      reserve,
      dateTime: ts,
      expires,
      seller: seller + FIRST_PERSON_ID,
      category,
      extra: this.extra,
    };
  }

  private person(id: number, ts: number): NexmarkPerson {
    this.reseed(id);
    const name = NAMES[this.nextInt(NAMES.length)];
    const email = `${this.nextString(7, ' ')}@${this.nextString(5, ' ')}.com`;
    const card = `${this.digits4()} ${this.digits4()} ${this.digits4()} ${this.digits4()}`;
    return {
      kind: 'person',
      id: lastBase0PersonId(id) + FIRST_PERSON_ID,
      name,
      emailAddress: email,
      creditCard: card,
      city: US_CITIES[this.nextInt(US_CITIES.length)],
      state: US_STATES[this.nextInt(US_STATES.length)],
      dateTime: ts,
      extra: this.extra,
    };
  }

  /** One of the active persons (base 0), up to `idLead` ahead of the last one. */
  private nextBase0PersonId(lastPerson: number): number {
    const numPeople = lastPerson + 1;
    const active = Math.min(numPeople, this.activePeople);
    return numPeople - active + this.nextInt(active + this.lead);
  }

  private nextPrice(): number {
    return priceOf(this.next30());
  }

  private digits4(): string {
    return String(this.nextInt(10_000)).padStart(4, '0');
  }

  /** Pool slot `c` (>= the hot ones): channel `c - 4`, with Nexmark's url (half of them carry the id). */
  private makeChannel(c: number): string {
    const i = c - HOT_CHANNELS.length;
    const s = this.s;
    this.reseed(TWO_32 * 2 + i);
    const name = `channel-${i}`;
    let url = this.baseUrl();
    if (this.nextInt(2) > 0) url += `&channel_id=${reverseBits(i)}`;
    this.channelNames[c] = name;
    this.channelUrls[c] = url;
    this.s = s;
    return name;
  }

  private makeItemName(i: number): string {
    const s = this.s;
    this.reseed(TWO_32 * 3 + i);
    const v = (this.itemNames[i] = this.nextString(20, ' '));
    this.s = s;
    return v;
  }

  private makeDescription(i: number): string {
    const s = this.s;
    this.reseed(TWO_32 * 4 + i);
    const v = (this.descriptions[i] = this.nextString(100, ' '));
    this.s = s;
    return v;
  }

  private baseUrl(): string {
    return `https://www.nexmark.com/${this.nextString(5, '_')}/${this.nextString(5, '_')}/${this.nextString(5, '_')}/item.htm?query=1`;
  }

  /** 3 to `maxLength - 1` letters, with `special` now and then (Nexmark's `nextString`). */
  private nextString(maxLength: number, special: string): string {
    let len = 3 + this.nextInt(maxLength - 3);
    let s = '';
    while (len-- > 0) s += this.nextInt(13) === 0 ? special : String.fromCharCode(97 + this.nextInt(26));
    return s.trim();
  }

  private nextExactString(len: number): string {
    let s = '';
    while (len-- > 0) s += String.fromCharCode(97 + this.nextInt(26));
    return s;
  }

  /** A 32-bit hash of an id (event id, or a pool slot) and the generator's seed. */
  private hashOf(id: number): number {
    const lo = id >>> 0;
    const hi = id < TWO_32 ? 0 : Math.floor(id / TWO_32) >>> 0;
    return mix32(Math.imul(lo ^ this.seedHash, 0x9e3779b1) ^ mix32(hi + this.seedHash)) | 0;
  }

  /** Seeds the PRNG of the rarer paths (persons, auctions, string pools) from an id. */
  private reseed(id: number): void {
    this.s = this.hashOf(id);
  }

  /** Uniform in [0, 2^30) (mulberry32, top 30 bits). */
  private next30(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 2;
  }

  /** Uniform integer in [0, n). */
  private nextInt(n: number): number {
    return uniformInt(this.next30(), n);
  }
}

function reverseBits(i: number): number {
  let r = 0;
  for (let b = 0; b < 31; b++) {
    r = (r << 1) | (i & 1);
    i >>>= 1;
  }
  return r;
}
