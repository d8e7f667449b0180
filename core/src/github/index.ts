// Public surface of the github domain. Filled in by the domain's own modules.
export {};
