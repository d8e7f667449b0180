/** gh renders a missing time (a check that never started, a review never submitted) as Go's zero time. */
export const ZERO_TIME = /^0001-01-01/;
