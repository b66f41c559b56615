"""The recipe's recipe, field by field (../shared/seed/hydrogen_torch_config.yaml).

Every setting of the recipe that this code can vary has a field here with the recipe's
value; the comment names the recipe's key where ours differs in spelling. Settings
with one behaviour only have no field: mix_target=Ratio (mixup mixes targets by its
weight), inference_chunk_method=Fix (fixed chunks, averaged) and metric=ROC_AUC
(always reported, with the others).
Every field's type, meaning and allowed values: schema.py.
"""

import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.name = "baseline"
  c.seed = -1  # environment.seed: -1 draws one, logs it and writes it to config.json

  c.model = ml_collections.ConfigDict()
  c.model.backbone = "resnet50"  # architecture.backbone
  c.model.weights = "imagenet"  # architecture.pretrained=true; or a .h5 path, or "none"
  c.model.pool = "avg"  # architecture.pool=Average
  c.model.dropout = 0.0  # architecture.dropout
  c.model.branch_dropout = 0.0  # not in the recipe: cnn8+musicnn's musicnn features dropped whole (model.py)
  # Not in the recipe (which fine-tunes every layer): "backbone" trains the classifier alone (schema.py).
  c.model.freeze = "none"
  # Not in the recipe: "tags" starts each class named like one of musicnn's MagnaTagATune tags from it.
  c.model.head_init = "random"
  # Not in the recipe: cnn8's channel multiplier (1: 32-64-128-256); resnet50's widths are fixed.
  c.model.width = 1.0
  # PyTorch's BatchNorm (the recipe's timm ResNet50) keeps running stats with momentum 0.1,
  # i.e. Keras momentum 0.9; keras.applications builds with 0.99. 0 keeps keras' value.
  c.model.bn_momentum = 0.9

  c.audio = ml_collections.ConfigDict()
  c.audio.sample_rate = 44100
  c.audio.stft_window_size = 2048
  c.audio.hop_size = 512
  c.audio.mel_bins = 128  # mel_frequency_bins
  c.audio.fmin = 50.0  # minimum_frequency
  c.audio.fmax = 16000.0  # maximum_frequency
  c.audio.top_db = 80.0  # librosa.power_to_db's default floor
  c.audio.spectrogram_normalization = "none"  # the recipe's 'No'; or "frequency" (model.py)
  c.audio.training_chunk_seconds = 60.0
  # Not in the recipe: compute the log-mel inside the jitted train step from waveform batches.
  c.audio.features_on_device = False

  c.augmentation = ml_collections.ConfigDict()
  c.augmentation.mix_audio = "disabled"  # disabled | mixup
  c.augmentation.mix_concentration = 1.0
  c.augmentation.mix_iterations = 1
  c.augmentation.mix_probability = 1.0
  # Not in the recipe (all off here): waveform and spectrogram augmentation, see data/augment.py.
  c.augmentation.gain_db = 0.0
  c.augmentation.noise_prob = 0.0
  c.augmentation.noise_snr_db = (10.0, 40.0)
  c.augmentation.eq_prob = 0.0
  c.augmentation.reverb_prob = 0.0
  c.augmentation.pitch_prob = 0.0
  c.augmentation.pitch_semitones = 2.0
  c.augmentation.freq_masks = 0
  c.augmentation.freq_mask_bins = 8
  c.augmentation.time_masks = 0
  c.augmentation.time_mask_frames = 20

  c.data = ml_collections.ConfigDict()
  c.data.path = "synth"  # "synth" (embedded, rendered lazily) or a dataset directory
  c.data.synth_seed = 0
  # Not in the recipe: how the embedded train split sounds (data/synth.py; test and unseen are fixed).
  c.data.synth_engines = "soundfont,physical,spectral"
  c.data.synth_chain_prob = 0.75
  c.data.synth_voice_spread = 0.0  # > 0: model-engine clips blend two voices (data/engines.py's blend_voice)
  c.data.synth_distortion_prob = 0.1  # of the chained clips, those distorted (data/chains.py)
  c.data.synth_guitar_amp = 0.0  # > 0: that share of model-engine guitars through an amplifier (data/synth.py)
  c.data.synth_formant_shift = 0  # > 0: sample-library clips' resonances moved up to this many semitones
  # The label set: "auto" reads it from the training split (Kaggle's Sound_Guitar... give guitar,
  # drum, violin, piano, in that order); or "flute,trumpet,cello" fixes the set and its order.
  c.data.classes = "auto"
  c.data.audio_column = "FileName"
  c.data.label_column = "Class"
  c.data.label_separator = "|"  # multi-label cells: "guitar|piano"
  c.data.label_columns = ""  # or one 0/1 CSV column per class: "guitar,piano,..."
  c.data.validation_strategy = "kfold"  # or "programs" / "engine" (synth only: a voice per class, or an engine)
  c.data.validation_engine = "physical"  # read with validation_strategy=engine
  c.data.num_folds = 5  # validation_size=0.2
  c.data.validation_fold = 4  # folds=['4']
  c.data.fold_seed = 0
  c.data.data_sample = 1.0
  c.data.sampling = "natural"  # or "balanced": every class equally often in each batch
  c.data.num_workers = 4  # environment.number_of_workers
  c.data.skip_bad_files = False
  # Not in the recipe. Whole-clip log-mels cached on disk: "auto" ($INSTRUMENTS_JAX_CACHE or
  # ~/.cache/instruments_jax), a directory, or "none".
  c.data.cache_dir = "auto"
  # Not in the recipe. > 0: every clip is read up to its first this many seconds (training windows,
  # evaluation, cache entries); 0 reads whole clips, as the recipe did.
  c.data.max_clip_seconds = 0.0
  # Padded lengths in seconds for clips shorter than a chunk, e.g. (5.0, 15.0, 30.0); () pads
  # every chunk to its full length, as the recipe did.
  c.data.length_buckets = ()

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 8
  c.train.drop_last_batch = True
  c.train.epochs = 5
  c.train.evaluation_epochs = 1
  c.train.optimizer = "adamw"
  c.train.learning_rate = 1e-3
  c.train.weight_decay = 0.0
  c.train.schedule = "cosine"
  c.train.warmup_epochs = 0.0
  c.train.gradient_clip = 0.0
  c.train.grad_accumulation = 1
  c.train.average_from = 0.0  # 0: the last weights; f in (0, 1]: the mean of the weights from f of training on
  c.train.loss = "bce"  # bce (seed) | softmax
  c.train.label_smoothing = 0.0  # not in the recipe
  c.train.mixed_precision = True  # environment.mixed_precision_training
  c.train.log_every_steps = 10
  c.train.checkpoint_every_steps = 500  # and at every epoch end; 0: epoch ends only
  c.train.keep_checkpoints = 3
  c.train.restart = False  # true: move an existing run in the workdir aside and start over

  c.prediction = ml_collections.ConfigDict()
  c.prediction.inference_chunk_seconds = 60.0
  c.prediction.max_inference_chunk_seconds = 600.0
  c.prediction.probability_threshold = 0.5
  c.prediction.batch_size = 8
  c.prediction.mixed_precision = False  # environment.mixed_precision_inference

  c.logging = ml_collections.ConfigDict()
  c.logging.number_of_audios = 8
  return c
