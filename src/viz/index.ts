// Public API of src/viz (owned by the work on this area).
export {};
