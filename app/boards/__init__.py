"""Pipeline boards: leads by status and loan applications by stage, as columns of cards."""
