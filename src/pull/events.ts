/** What a pull reports as it goes, for progress bars, logs and `--progress=json`. Never carries
 * credentials or URLs with query strings. */
export type PullEvent =
  | { readonly type: 'resolving'; readonly image: string }
  | {
      readonly type: 'resolved';
      readonly image: string;
      readonly digest: string;
      readonly mediaType: string;
      readonly via: 'HEAD' | 'GET' | 'store';
    }
  | {
      readonly type: 'manifest';
      readonly image: string;
      readonly digest: string;
      readonly mediaType: string;
      readonly platform?: string;
    }
  | { readonly type: 'blob-waiting'; readonly digest: string; readonly size: number; readonly mediaType: string }
  | { readonly type: 'blob-exists'; readonly digest: string; readonly size: number }
  | { readonly type: 'blob-resumed'; readonly digest: string; readonly size: number; readonly offset: number }
  | { readonly type: 'blob-progress'; readonly digest: string; readonly size: number; readonly bytes: number }
  | { readonly type: 'blob-verifying'; readonly digest: string; readonly size: number }
  | {
      readonly type: 'blob-done';
      readonly digest: string;
      readonly size: number;
      readonly bytesReceived: number;
      readonly ms: number;
    }
  | {
      readonly type: 'retrying';
      readonly host: string;
      readonly reason: string;
      readonly attempt: number;
      readonly delayMs: number;
    }
  | { readonly type: 'warning'; readonly message: string }
  | {
      readonly type: 'done';
      readonly image: string;
      readonly digest: string;
      readonly bytesReceived: number;
      readonly ms: number;
    };

export type PullEventSink = (event: PullEvent) => void;
