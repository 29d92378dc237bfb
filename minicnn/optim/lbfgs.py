"""L-BFGS (Nocedal 1980; Liu & Nocedal 1989), PyTorch's ``torch.optim.LBFGS`` step for step: the same arguments,
defaults, stopping rules and state, so that Gatys et al.'s style transfer (which optimises the image with
L-BFGS) and a PyTorch user's ``opt.step(closure)`` loop carry over unchanged.

A quasi-Newton method: from the last ``history_size`` pairs (s, y) of parameter steps and gradient changes it
builds the product of an approximate inverse Hessian with the gradient by the two-loop recursion (Nocedal &
Wright, *Numerical Optimization*, Algorithm 7.4), and steps along it.  ``step(closure)`` runs up to
``max_iter`` such iterations, calling ``closure`` (which re-evaluates the loss and its gradients) once each.

The step length is ``lr`` (the very first one ``min(1, 1 / |g|_1) lr``); ``line_search_fn="strong_wolfe"``, the
other choice PyTorch offers, is not implemented here and is refused with an error.
"""
from minicnn.backend import get_array_module
from minicnn.optim.optimizer import Optimizer

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """``LBFGS(params, lr=1, max_iter=20, max_eval=None (max_iter * 5 // 4), tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None)``.  One parameter group; ``step`` needs a
    closure and returns the loss of its first evaluation."""

    def __init__(self, params, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if line_search_fn is not None:
            raise ValueError(f"LBFGS: line_search_fn={line_search_fn!r} is not implemented in minicnn; "
                             "use None (a fixed step of lr)")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ---- the parameters as one flat vector ----------------------------------------------------------------
    def _flat_grad(self):
        xp = get_array_module(self._params[0].data)
        return xp.concatenate([(p.grad.data if p.grad is not None else xp.zeros_like(p.data)).ravel()
                               for p in self._params])

    def _add(self, t, d):
        """p += t d, d cut into the parameters' shapes."""
        offset = 0
        for p in self._params:
            n = p.data.size
            p.data += (t * d[offset:offset + n]).reshape(p.data.shape).astype(p.dtype, copy=False)
            offset += n

    def step(self, closure=None):
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that re-evaluates the model and returns the loss")
        from minicnn.autograd import enable_grad

        def evaluate():
            with enable_grad():
                loss = closure()
            return loss, float(loss.item() if hasattr(loss, "item") else loss)

        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change, history = group["tolerance_grad"], group["tolerance_change"], group["history_size"]
        state = self.state.setdefault(id(self._params[0]), {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, loss = evaluate()
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        xp = get_array_module(g)
        if float(xp.abs(g).max()) <= tol_grad:                  # already optimal
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs", []), state.get("old_stps", []), state.get("ro", [])
        H_diag, prev_g, prev_loss = state.get("H_diag", 1.0), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # -- the direction d = -H g ------------------------------------------------------------------
            if state["n_iter"] == 1:
                d = -g
                old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
            else:
                y, s = g - prev_g, d * t                            # gradient change, parameter step
                ys = float(y @ s)
                if ys > 1e-10:                                      # curvature condition: keep the pair
                    if len(old_dirs) == history:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)                      # the initial Hessian's scale, gamma_k
                q, alpha = -g, [0.0] * len(old_dirs)
                for i in range(len(old_dirs) - 1, -1, -1):          # first loop: newest pair to oldest
                    alpha[i] = float(old_stps[i] @ q) * ro[i]
                    q = q - alpha[i] * old_dirs[i]
                d = q * H_diag
                for i in range(len(old_dirs)):                      # second loop: oldest to newest
                    beta = float(old_dirs[i] @ d) * ro[i]
                    d = d + (alpha[i] - beta) * old_stps[i]
            prev_g, prev_loss = g.copy(), loss
            # -- the step --------------------------------------------------------------------------------
            t = min(1.0, 1.0 / float(xp.abs(g).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(g @ d)
            if gtd > -tol_change:                                   # not a descent direction
                break
            self._add(t, d)
            done = False
            if n_iter != max_iter:
                _, loss = evaluate()
                g = self._flat_grad()
                done = float(xp.abs(g).max()) <= tol_grad
                evals += 1
                state["func_evals"] += 1
            if n_iter == max_iter or evals >= max_eval or done:
                break
            if float(xp.abs(d * t).max()) <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_g, prev_loss=prev_loss)
        return orig_loss
