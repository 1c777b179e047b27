// The namespace toolkit lives in test/lab, shared by the demo script, the benchmark and the tests.
export * from '../lab/netns';
