/** Pinia as the app (main.ts) and the unit tests create it: both resolve it from web/'s own packages. */
export { createPinia, setActivePinia } from 'pinia';
