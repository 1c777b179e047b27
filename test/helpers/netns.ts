// The namespace toolkit lives in src/lab so that `softwire demo` and the benchmark share it.
export * from '../../src/lab/netns';
