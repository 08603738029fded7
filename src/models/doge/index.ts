// Public API of src/models/doge (owned by the work on this area).
export {};
