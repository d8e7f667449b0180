// Public surface of the terminal domain. Filled in by the domain's own modules.
export {};
