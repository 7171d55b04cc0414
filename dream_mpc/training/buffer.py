"""Replay buffer of whole episodes in preallocated torch tensors, sampled as (H+1)-step sub-trajectories.

Episode layout (as TD-MPC2's): row 0 holds the reset observation with NaN action/reward/terminated; row t
holds obs_t and action_{t-1}, reward_{t-1}, terminated_{t-1}. Rows live in a ring of `capacity` rows that
grows on demand up to capacity, then overwrites the oldest rows. A start row is valid when the H rows after
it belong to the same episode, so a sample never crosses an episode boundary.

Stacked frames (`frame_stack=k`, pixel envs: k = 3) are stored once: each row keeps its newest frame and its
position in the episode, and a sample restacks the k frames ending at a row (the episode's first frame repeated
before it, as the envs do at a reset), bit for bit the observation the env gave. So a 64x64 RGB step takes 12,288
bytes instead of 36,864, and 1M pixel steps fit in 12.3 GB.
"""

import torch

from dream_mpc.errors import UserError
from dream_mpc.runtime import resolve_device

STEP_SCALARS = ("reward", "terminated")  # stored as (1,) per step, like the (H, B, 1) they are sampled as
FRAME_POS = "_frame_pos"  # a row's position in its episode, kept with stacked frames (not a sampled field)


class Buffer:
    def __init__(self, cfg, sequence_length=None, batch_size=None, frame_stack=1):
        """`sequence_length` rows per sampled sequence and `batch_size` sequences per batch: the agent's
        (`Agent.sequence_length(cfg)`, `Agent.batch_size(cfg)`); by default TD-MPC2's horizon + 1 and batch_size.
        `frame_stack`: observations are this many stacked frames (the env's `frame_stack`), stored once each."""
        # whole episodes are stored: a buffer smaller than one episode cannot work, and is refused rather than
        # silently enlarged; fewer total steps than one episode still hold that episode
        if int(cfg.buffer_size) < cfg.episode_length + 1:
            raise UserError(
                f"buffer_size={cfg.buffer_size} is not allowed for {getattr(cfg, 'task', 'this task')}: the buffer "
                "holds whole episodes, so "
                f"buffer_size must be >= {cfg.episode_length + 1} (one episode of {cfg.episode_length} steps plus its "
                "reset row)"
            )
        self.capacity = max(min(int(cfg.buffer_size), int(cfg.steps)), cfg.episode_length + 1)
        rows = sequence_length or cfg.horizon + 1
        if rows < 2:  # a family's sequence_length counts observation rows (T + 1), not transitions (T)
            raise ValueError(f"sequence_length={rows}: a sampled sequence needs at least 2 rows (T + 1 observations)")
        self.horizon = rows - 1  # a sample is this many steps after its start row
        self.batch_size = batch_size or cfg.batch_size
        self.frame_stack = int(frame_stack)
        self.device = resolve_device(cfg.device)
        self._storage_device = None  # decided at the first episode: the agent's GPU if the full buffer fits
        self._fields = {}
        self._valid = None  # (allocated,) bool: row is a valid sub-trajectory start
        self._starts = torch.zeros(0, dtype=torch.long)
        self._ptr = 0  # next row to write
        self._size = 0  # rows written so far, at most capacity
        self.num_episodes = 0

    def __len__(self):
        return self._size

    @property
    def nbytes(self):
        return sum(v[: self._size].nbytes for v in self._fields.values())

    @staticmethod
    def _stack(episode):
        """A list of per-step dicts or a dict of stacked tensors -> dict of (L, ...) tensors."""
        if not isinstance(episode, dict):
            episode = {k: torch.stack([torch.as_tensor(step[k]) for step in episode]) for k in episode[0]}
        out = {}
        for key, value in episode.items():
            value = torch.as_tensor(value)
            if value.is_floating_point():
                value = value.float()
            out[key] = value.reshape(len(value), 1) if key in STEP_SCALARS else value
        return out

    def _pick_storage_device(self, row_bytes):
        """The official rule: keep the buffer on the GPU if 2.5x its full size fits in free memory."""
        if self.device.type == "cuda":
            free = torch.cuda.mem_get_info(self.device)[0]
            if 2.5 * row_bytes * self.capacity < free:
                return self.device
        return torch.device("cpu")

    def _allocate(self, episode, rows):
        """Grow every field (and the start mask) to `rows` rows, keeping what is stored."""
        if self._storage_device is None:
            self._storage_device = self._pick_storage_device(sum(v[0].nbytes for v in episode.values()))
        for key, value in episode.items():
            new = _blank((rows, *value.shape[1:]), value.dtype, self._storage_device)
            old = self._fields.get(key)
            if old is not None:
                new[: len(old)] = old
            self._fields[key] = new
        valid = torch.zeros(rows, dtype=torch.bool)
        if self._valid is not None:
            valid[: len(self._valid)] = self._valid
        self._valid = valid

    def _unstack(self, episode):
        """Keep each row's newest frame and its position, after checking that the rows are stacks of k frames."""
        obs, k = episode["obs"], self.frame_stack
        c = obs.shape[1] // k if obs.dim() > 1 else 0
        if c == 0 or obs.shape[1] != c * k:
            raise ValueError(f"frame_stack={k} needs observations of k x channels, got shape {tuple(obs.shape[1:])}")
        first = obs[0].reshape(k, c, *obs.shape[2:])
        if not (first == first[-1:]).all() or not torch.equal(obs[1:, :-c], obs[:-1, c:]):
            raise ValueError(f"the episode's observations are not {k} stacked frames (a frame shifts out each step)")
        return {**episode, "obs": obs[:, -c:].contiguous(), FRAME_POS: torch.arange(len(obs), dtype=torch.int32)}

    def _cut_stacks(self, first_row):
        """Rows of a partly overwritten episode (or a kept suffix) whose stacks reach lost frames are no start."""
        for j in range(self.frame_stack - 1):
            row = (first_row + j) % self.capacity
            if row < len(self._valid) and self._fields[FRAME_POS][row] != 0:
                self._valid[row] = False

    def add(self, episode):
        """Store one whole episode; returns the number of episodes added so far."""
        episode = self._stack(episode)
        if self.frame_stack > 1:
            episode = self._unstack(episode)
        length = len(episode["obs"])
        if length > self.capacity:
            raise UserError(
                f"an episode of {length} steps does not fit in a buffer of {self.capacity} rows; raise buffer_size"
            )
        if self._fields and set(episode) != set(self._fields):
            raise ValueError(f"episode keys {sorted(episode)} differ from the buffer's {sorted(self._fields)}")
        allocated = len(self._valid) if self._valid is not None else 0
        needed = min(self._ptr + length, self.capacity)
        if needed > allocated:
            self._allocate(episode, min(self.capacity, max(needed, 2 * allocated)))
        rows = (self._ptr + torch.arange(length)) % self.capacity
        for key, value in episode.items():
            self._fields[key][rows.to(self._storage_device)] = value.to(self._storage_device)
        self._valid[rows] = torch.arange(length) < length - self.horizon
        if self.frame_stack > 1:
            self._cut_stacks(self._ptr + length)
        self._ptr = (self._ptr + length) % self.capacity
        self._size = min(self._size + length, self.capacity)
        self._starts = self._valid.nonzero().squeeze(1)
        self.num_episodes += 1
        return self.num_episodes

    def sample(self, return_index=False):
        """batch_size sub-trajectories, time-major on the agent's device: obs (H+1, B, ...), action (H, B, A),
        reward and terminated (H, B, 1), any extra per-step key aligned like action, task (B,) if stored.
        With return_index, also the (H+1, B) storage rows, for `write`."""
        if len(self._starts) == 0:
            raise RuntimeError("the buffer holds no episode longer than the horizon yet")
        starts = self._starts[torch.randint(len(self._starts), (self.batch_size,))]
        index = (starts.unsqueeze(0) + torch.arange(self.horizon + 1).unsqueeze(1)) % self.capacity
        rows = index.to(self._storage_device)
        batch = {}
        for key, value in self._fields.items():
            if key == FRAME_POS:
                continue
            if key == "obs":
                batch[key] = value[rows] if self.frame_stack == 1 else self._restack(value, rows)
            elif key == "task":
                batch[key] = value[rows[0]]
            else:
                batch[key] = value[rows[1:]]
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        return (batch, index) if return_index else batch

    def _restack(self, frames, rows):
        """(..., k x C, H, W): the k frames ending at each row, the episode's first frame repeated before it."""
        k = self.frame_stack
        pos = self._fields[FRAME_POS][rows].long().unsqueeze(-1)
        back = torch.minimum(torch.arange(k - 1, -1, -1, device=pos.device), pos)
        stacked = frames[(rows.unsqueeze(-1) - back) % self.capacity]  # (..., k, C, H, W), oldest first
        return stacked.flatten(-4, -3)

    def write(self, index, key, values):
        """Overwrite stored rows of `key` (e.g. BMPC's reanalysed targets) at storage rows `index`."""
        index = torch.as_tensor(index, device=self._storage_device)
        field = self._fields[key]
        field[index] = values.to(field.device, field.dtype)

    def state_dict(self):
        """The stored rows, oldest first (so they load into a buffer of any capacity)."""
        order = torch.arange(self._size).roll(-self._ptr)  # the identity until the ring wraps
        valid = self._valid[order] if self._valid is not None else torch.zeros(0, dtype=torch.bool)
        return {
            "fields": {k: v[order.to(v.device)].cpu() for k, v in self._fields.items()},
            "valid": valid,
            "num_episodes": self.num_episodes,
            "ptr": self._ptr,
            "capacity": self.capacity,
            "horizon": self.horizon,  # the valid starts were marked for it
            "frame_stack": self.frame_stack,
        }

    def load_state_dict(self, state):
        """Rows saved by `state_dict`, their valid starts marked anew for this buffer's horizon."""
        state = _revalidate(state, state["horizon"], self.horizon)
        size = min(len(state["valid"]), self.capacity)
        self._fields, self._valid, self._storage_device = {}, None, None
        self._ptr, self._size, self.num_episodes = size % self.capacity, size, state["num_episodes"]
        self._starts = torch.zeros(0, dtype=torch.long)
        if size:  # a smaller capacity keeps the newest rows; a cut episode keeps its valid suffix
            fields = {k: v[len(v) - size :] for k, v in state["fields"].items()}
            self._allocate(fields, size)
            for key, value in fields.items():
                self._fields[key][:] = value.to(self._storage_device)
            self._valid[:] = state["valid"][len(state["valid"]) - size :]
            if self.frame_stack > 1 and size < len(state["valid"]):
                self._cut_stacks(0)
            if state.get("capacity") == self.capacity == size and state.get("ptr", 0):
                # the same wrapped ring: put the rows back where they were, so a resumed run samples the same rows
                ptr = state["ptr"]
                for key in self._fields:
                    self._fields[key] = self._fields[key].roll(ptr, 0)
                self._valid, self._ptr = self._valid.roll(ptr, 0), ptr
            self._starts = self._valid.nonzero().squeeze(1)


def episode_row(obs, action_dim, action=None, reward=None, terminated=None, extras=None, planned=False):
    """One buffer row: obs_t with action_{t-1}, reward_{t-1}, terminated_{t-1} (NaN on the reset row), and the
    agent's `buffer_extras(planned)` where it has them."""
    nan = torch.tensor(float("nan"))
    row = {
        "obs": obs,
        "action": torch.full((action_dim,), float("nan")) if action is None else action,
        "reward": nan if reward is None else reward,
        "terminated": nan if terminated is None else terminated,
    }
    if extras is not None:
        row.update(extras(planned=planned))
    return row


def _blank(shape, dtype, device):
    """NaN for float fields (unfilled rows, like the reset row's action), zeros otherwise."""
    if dtype.is_floating_point:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.zeros(shape, dtype=dtype, device=device)


def _revalidate(buffer_state, old_horizon, new_horizon):
    """A saved buffer's sub-trajectory starts for another horizon. Each episode's valid starts are its rows
    0 .. L-1-H, one run of True: a longer horizon ends each run earlier, a shorter one later."""
    valid = buffer_state["valid"]
    shift = new_horizon - old_horizon
    if shift == 0 or not len(valid):
        return buffer_state
    out = valid.clone()
    if shift > 0:  # t stays valid iff rows t .. t+shift were all valid (the same episode, far enough from its end)
        for d in range(1, shift + 1):
            out[:-d] &= valid[d:]
            out[-d:] = False
    else:  # each run of valid rows extends by -shift rows (into its own episode's tail)
        ends = (valid & ~torch.cat([valid[1:], torch.tensor([False])])).nonzero().squeeze(1)
        for end in ends.tolist():
            out[end + 1 : end + 1 - shift] = True
    return {**buffer_state, "valid": out}
