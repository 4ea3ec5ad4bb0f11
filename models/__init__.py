"""hilkit reference models: numpy layers, training, recipes, datasets."""
