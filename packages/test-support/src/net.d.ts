/** A port on 127.0.0.1 that was free a moment ago (for a server whose port must be known before it starts). */
export declare function freePort(): Promise<number>;
