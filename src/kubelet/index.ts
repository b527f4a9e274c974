/** The kubelet's image handling: pull-policy defaulting and (later) the image manager. */
export { PullPolicy, defaultPullPolicy, isPullPolicy } from './policy.ts';
