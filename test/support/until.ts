// The tests wait the way the demo and the benches do.
export { until } from '../../core/wait.js';
