"""Who acts on which rows: Supabase's roles and JWT claims, rows made from the columns' types, keys."""
