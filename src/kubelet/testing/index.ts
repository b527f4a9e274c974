/**
 * Test doubles for the kubelet's image handling (`kimg/kubelet/testing`), kept out of the library
 * face as upstream keeps `pkg/kubelet/images/testing` apart: an in-memory image service with
 * private repositories and scripted failures, and a clock that only moves when told to.
 */
export { FakeImageService, type FakeCall, type FakeRemoteImage } from './fake-image-service.ts';
export { ManualClock } from '../../signals/index.ts';
