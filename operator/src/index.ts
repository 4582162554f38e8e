export const KASHO_API_GROUP = 'kasho.io';
