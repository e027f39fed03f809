/**
 * The Nexmark event model (an online auction site: people register, open auctions, bid), as in the
 * Nexmark benchmark used by Beam and Flink. Every event carries `kind` and its event time `dateTime`
 * (epoch ms), so a stream of {@link NexmarkEvent} narrows with `e.kind === 'bid'`.
 */

/** A new user of the auction site. */
export interface NexmarkPerson {
  readonly kind: 'person';
  readonly id: number;
  readonly name: string;
  readonly emailAddress: string;
  readonly creditCard: string;
  readonly city: string;
  readonly state: string;
  /** Event time, epoch ms. */
  readonly dateTime: number;
  /** Padding (`extraBytes` characters). */
  readonly extra: string;
}

/** A new auction, opened by the person `seller`. */
export interface NexmarkAuction {
  readonly kind: 'auction';
  readonly id: number;
  readonly itemName: string;
  readonly description: string;
  readonly initialBid: number;
  readonly reserve: number;
  /** Event time, epoch ms. */
  readonly dateTime: number;
  /** When the auction closes, epoch ms. */
  readonly expires: number;
  readonly seller: number;
  readonly category: number;
  readonly extra: string;
}

/** A bid of the person `bidder` on the auction `auction`. */
export interface NexmarkBid {
  readonly kind: 'bid';
  readonly auction: number;
  readonly bidder: number;
  /** In cents. */
  readonly price: number;
  readonly channel: string;
  readonly url: string;
  /** Event time, epoch ms. */
  readonly dateTime: number;
  readonly extra: string;
}

/** One Nexmark event. */
export type NexmarkEvent = NexmarkPerson | NexmarkAuction | NexmarkBid;

/** `'person' | 'auction' | 'bid'`. */
export type NexmarkKind = NexmarkEvent['kind'];

/** The event type of the given kinds: `NexmarkEventOf<'bid'>` is {@link NexmarkBid}. */
export type NexmarkEventOf<K extends NexmarkKind> = Extract<NexmarkEvent, { kind: K }>;
