"""A PETS-like agent family for Dream-MPC (agent=pets)."""
