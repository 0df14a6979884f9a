"""Pictures and tables drawn from results already computed (nothing here runs a model): render's
drawing primitives, the maps over the photo (maps), the logit lens (lens), the evidence (evidence)."""
