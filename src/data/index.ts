// Public API of src/data (owned by the work on this area).
export {};
