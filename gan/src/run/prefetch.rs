//! Batches drawn one ahead on a background thread, and moved to the model's device there, so the
//! host work of a batch (gathering shuffled images, scaling them) and its upload overlap the
//! training step before it instead of running between steps.
//!
//! On a CUDA device the upload is queued on the device's one stream from page-locked staging
//! memory (`CudaDevice::upload`), so the background thread never waits for the running step's
//! kernels and the batch is on the device before the next step's first kernel. On the CPU the
//! "upload" is a no-op and the batches are the same tensors the source gives.

use super::train_loop::{BatchSource, BoxError};
use saddle_nn::engine::{Device, Tensor};
use std::sync::mpsc::{channel, Receiver, Sender};

type Batch = (Tensor, Option<Vec<usize>>);

enum Request {
    Next,
    SetPosition(String),
}

/// What the thread answers: the batch (for `Next`) and the source's position after the request.
type Reply = Result<(Option<Batch>, String), BoxError>;

/// A [`BatchSource`] whose inner source runs one batch ahead on a background thread (see the
/// module docs). It yields exactly the inner source's batches in order; its position is the
/// inner source's position after the last batch it *handed out* (not the one drawn ahead), so
/// checkpoints and resumed runs are the same as without it.
pub struct Prefetch {
    requests: Sender<Request>,
    replies: Receiver<Reply>,
    /// A request has been sent and its reply not yet taken.
    in_flight: bool,
    position: String,
}

/// Runs `f` with `source` wrapped in a [`Prefetch`] that moves each batch to `device`; the
/// background thread ends when `f` returns (after finishing the batch it is drawing, which is
/// dropped).
pub fn with_prefetch<R>(
    source: &mut (dyn BatchSource + Send),
    device: Device,
    f: impl FnOnce(&mut Prefetch) -> R,
) -> R {
    let position = source.position();
    std::thread::scope(|scope| {
        let (requests, inbox) = channel();
        let (outbox, replies) = channel();
        scope.spawn(move || serve(source, device, inbox, outbox));
        let mut prefetch = Prefetch {
            requests,
            replies,
            in_flight: false,
            position,
        };
        let out = f(&mut prefetch);
        // Closing the request channel ends the thread.
        drop(prefetch);
        out
    })
}

/// The background thread: answers requests until the [`Prefetch`] is dropped.
fn serve(
    source: &mut (dyn BatchSource + Send),
    device: Device,
    inbox: Receiver<Request>,
    outbox: Sender<Reply>,
) {
    for request in inbox {
        let reply = match request {
            Request::Next => source.next_batch().and_then(|(images, labels)| {
                let images = images.to_device(device)?;
                Ok((Some((images, labels)), source.position()))
            }),
            Request::SetPosition(p) => source.set_position(&p).map(|()| (None, source.position())),
        };
        if outbox.send(reply).is_err() {
            return;
        }
    }
}

impl Prefetch {
    fn request(&mut self, request: Request) -> Result<(), BoxError> {
        self.requests
            .send(request)
            .map_err(|_| "batch prefetch: the background thread has ended")?;
        self.in_flight = true;
        Ok(())
    }

    fn reply(&mut self) -> Reply {
        self.in_flight = false;
        self.replies
            .recv()
            .map_err(|_| "batch prefetch: the background thread has ended")?
    }
}

impl BatchSource for Prefetch {
    fn next_batch(&mut self) -> Result<Batch, BoxError> {
        if !self.in_flight {
            self.request(Request::Next)?;
        }
        let (batch, position) = self.reply()?;
        self.position = position;
        // The following batch is drawn (and uploaded) while the caller trains on this one.
        self.request(Request::Next)?;
        batch.ok_or_else(|| "batch prefetch: a position came back where a batch was due".into())
    }

    fn position(&self) -> String {
        self.position.clone()
    }

    fn set_position(&mut self, position: &str) -> Result<(), BoxError> {
        if self.in_flight {
            // Drawn from the old position: never handed out, so even its error does not matter.
            let _ = self.reply();
        }
        self.request(Request::SetPosition(position.to_string()))?;
        let (_, position) = self.reply()?;
        self.position = position;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch `i` holds the value `i`; the position is the next index.
    struct Counter {
        next: usize,
        fail_at: Option<usize>,
    }

    impl BatchSource for Counter {
        fn next_batch(&mut self) -> Result<Batch, BoxError> {
            let i = self.next;
            if Some(i) == self.fail_at {
                return Err(format!("no batch {i}").into());
            }
            self.next += 1;
            Ok((
                Tensor::from_vec(vec![i as f32], &[1], Device::Cpu)?,
                Some(vec![i]),
            ))
        }
        fn position(&self) -> String {
            self.next.to_string()
        }
        fn set_position(&mut self, position: &str) -> Result<(), BoxError> {
            self.next = position.parse()?;
            Ok(())
        }
    }

    fn value(batch: &Batch) -> usize {
        batch.0.to_vec::<f32>().unwrap()[0] as usize
    }

    #[test]
    fn yields_the_sources_batches_and_positions_of_what_it_handed_out() {
        let mut source = Counter {
            next: 5,
            fail_at: None,
        };
        let drawn = with_prefetch(&mut source, Device::Cpu, |p| {
            assert_eq!(p.position(), "5");
            let mut seen = Vec::new();
            for _ in 0..3 {
                let b = p.next_batch().unwrap();
                assert_eq!(b.1, Some(vec![value(&b)]));
                seen.push(value(&b));
                // One batch is drawn ahead; the position is not.
                assert_eq!(p.position(), (value(&b) + 1).to_string());
            }
            // Back to an earlier position: the batch drawn ahead is dropped.
            p.set_position("2").unwrap();
            assert_eq!(p.position(), "2");
            seen.push(value(&p.next_batch().unwrap()));
            seen
        });
        assert_eq!(drawn, vec![5, 6, 7, 2]);
        // The thread drew one batch ahead before it ended.
        assert_eq!(source.next, 4);
    }

    #[test]
    fn an_error_reaches_the_caller_when_its_batch_is_due_only() {
        let mut source = Counter {
            next: 0,
            fail_at: Some(2),
        };
        with_prefetch(&mut source, Device::Cpu, |p| {
            assert_eq!(value(&p.next_batch().unwrap()), 0);
            // Batch 2 has failed in the background by now; batch 1 is still fine.
            assert_eq!(value(&p.next_batch().unwrap()), 1);
            let err = p.next_batch().unwrap_err().to_string();
            assert_eq!(err, "no batch 2");
        });
    }
}
