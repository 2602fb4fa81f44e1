//! The queue to the model and the model's own thread. Handlers put a request's pairs on a bounded
//! queue (full: the request is refused at once); one std thread, never an async worker, takes
//! requests off it, gathers the pairs of several clients into one batch, calls the model once for
//! the batch and answers each request through its own channel.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::{PairRequest, Prediction, Ranker};

/// Why a pair has no prediction.
#[derive(Clone, Debug)]
pub(crate) enum PairFailure {
    /// The model refused this pair (its message): the client's problem, a 422.
    Rejected(String),
    /// The model failed on the whole batch: the service's problem, a 500.
    ModelFailed(String),
}

/// One result per pair of a request, in order.
pub(crate) type Outcome = Vec<Result<Prediction, PairFailure>>;

/// One request's pairs and where to send their results.
struct Job {
    pairs: Vec<PairRequest>,
    reply: oneshot::Sender<Outcome>,
}

enum Message {
    Job(Job),
    /// Finish what is queued, then end the thread.
    Stop,
}

/// The handlers' side of the queue: cheap to share, never blocks.
pub(crate) struct ModelQueue {
    sender: SyncSender<Message>,
    capacity: usize,
    /// Requests that have arrived and will reach the queue soon (their bodies are being read);
    /// the model thread waits for them to fill a batch, and for nobody else.
    arriving: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

/// A request counted as arriving until it is queued or given up.
pub(crate) struct Arriving(Arc<AtomicUsize>);

impl Drop for Arriving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ModelQueue {
    /// Counts a request that will be queued soon.
    pub fn arriving(&self) -> Arriving {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arriving(Arc::clone(&self.arriving))
    }

    /// Queues the pairs of one request and waits for their results: 503 at once when the queue
    /// is full or the model thread has stopped.
    pub async fn score(
        &self,
        pairs: Vec<PairRequest>,
        arriving: Arriving,
    ) -> Result<Outcome, ApiError> {
        let (reply, results) = oneshot::channel();
        // No longer arriving once queued: the model thread must not wait for a request it
        // already holds.
        drop(arriving);
        // Counted before it is sent, so that the model thread never takes it off first.
        self.metrics.queue_depth.inc();
        let sent = self.sender.try_send(Message::Job(Job { pairs, reply }));
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.queue_depth.dec();
                self.metrics.rejected.inc();
                return Err(ApiError::overloaded(self.capacity));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.queue_depth.dec();
                return Err(ApiError::shutting_down());
            }
        }
        // A reply dropped unanswered means the thread ended with the request still queued.
        results.await.map_err(|_| ApiError::shutting_down())
    }
}

/// The model thread, until it is stopped.
pub(crate) struct ModelThread {
    sender: SyncSender<Message>,
    handle: JoinHandle<()>,
}

impl ModelThread {
    /// Answers every request already queued, then ends the thread. Blocks until it has.
    pub fn stop(self) -> Result<(), String> {
        // Blocks while the queue is full; the thread is draining it. An error means the
        // thread has already ended.
        let _ = self.sender.send(Message::Stop);
        self.handle
            .join()
            .map_err(|_| "the model thread panicked".to_owned())
    }
}

/// How the model thread gathers batches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batching {
    pub queue_capacity: usize,
    pub max_batch_pairs: usize,
    pub batch_wait: Duration,
}

/// Starts the model thread and returns the queue to it.
pub(crate) fn start(
    ranker: Arc<dyn Ranker>,
    batching: Batching,
    metrics: Arc<Metrics>,
) -> Result<(ModelQueue, ModelThread), String> {
    let (sender, receiver) = sync_channel(batching.queue_capacity);
    let arriving = Arc::new(AtomicUsize::new(0));
    let gatherer = Gatherer {
        receiver,
        batching,
        arriving: Arc::clone(&arriving),
        metrics: Arc::clone(&metrics),
        carried: None,
        stopping: false,
    };
    let handle = std::thread::Builder::new()
        .name("rubric-model".into())
        .spawn(move || gatherer.run(&*ranker))
        .map_err(|error| format!("cannot start the model thread: {error}"))?;
    let queue = ModelQueue {
        sender: sender.clone(),
        capacity: batching.queue_capacity,
        arriving,
        metrics,
    };
    Ok((queue, ModelThread { sender, handle }))
}

/// The model thread's state: the queue's far end and a request taken off it that did not fit
/// the last batch.
struct Gatherer {
    receiver: Receiver<Message>,
    batching: Batching,
    arriving: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    carried: Option<Job>,
    stopping: bool,
}

impl Gatherer {
    fn run(mut self, ranker: &dyn Ranker) {
        while let Some(first) = self.first_job() {
            let batch = self.gather(first);
            score_batch(ranker, batch, self.batching.max_batch_pairs, &self.metrics);
        }
    }

    /// The job that starts the next batch: waits for one, unless stopping, when the queue is
    /// only drained. `None` ends the thread.
    fn first_job(&mut self) -> Option<Job> {
        if let Some(job) = self.carried.take() {
            return Some(job);
        }
        loop {
            let message = if self.stopping {
                self.receiver.try_recv().ok()?
            } else {
                self.receiver.recv().ok()?
            };
            match message {
                Message::Job(job) => return Some(self.took(job)),
                Message::Stop => self.stopping = true,
            }
        }
    }

    /// Adds queued jobs to `first` up to `max_batch_pairs` pairs, waiting up to `batch_wait`
    /// while other requests are arriving. A job that would overflow the batch starts the next.
    fn gather(&mut self, first: Job) -> Vec<Job> {
        let deadline = Instant::now() + self.batching.batch_wait;
        let mut pairs = first.pairs.len();
        let mut batch = vec![first];
        while pairs < self.batching.max_batch_pairs {
            let Some(message) = self.next_message(deadline) else {
                break;
            };
            match message {
                Message::Stop => self.stopping = true,
                Message::Job(job) => {
                    let job = self.took(job);
                    if pairs + job.pairs.len() > self.batching.max_batch_pairs {
                        self.carried = Some(job);
                        break;
                    }
                    pairs += job.pairs.len();
                    batch.push(job);
                }
            }
        }
        batch
    }

    /// A message already queued, or one that comes before `deadline` while some request is
    /// arriving (polled in short steps, so that waiting ends when the last arrives).
    fn next_message(&self, deadline: Instant) -> Option<Message> {
        const STEP: Duration = Duration::from_micros(100);
        loop {
            if let Ok(message) = self.receiver.try_recv() {
                return Some(message);
            }
            let now = Instant::now();
            if self.stopping || now >= deadline || self.arriving.load(Ordering::SeqCst) == 0 {
                return None;
            }
            match self.receiver.recv_timeout(STEP.min(deadline - now)) {
                Ok(message) => return Some(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn took(&self, job: Job) -> Job {
        self.metrics.queue_depth.dec();
        job
    }
}

/// Scores the pairs of `batch` in calls of at most `max_pairs` and answers each job. A model
/// that panics or answers the wrong number of results fails its call's pairs, not the thread.
fn score_batch(ranker: &dyn Ranker, batch: Vec<Job>, max_pairs: usize, metrics: &Metrics) {
    let mut pairs = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        replies.push((job.pairs.len(), job.reply));
        pairs.extend(job.pairs);
    }
    metrics.batch_pairs.observe(pairs.len() as f64);
    metrics.batch_requests.observe(replies.len() as f64);
    let started = Instant::now();
    let mut results: Outcome = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(max_pairs.max(1)) {
        match catch_unwind(AssertUnwindSafe(|| ranker.score(chunk))) {
            Ok(scored) if scored.len() == chunk.len() => {
                results.extend(
                    scored
                        .into_iter()
                        .map(|result| result.map_err(PairFailure::Rejected)),
                );
            }
            Ok(scored) => {
                let failure = PairFailure::ModelFailed(format!(
                    "the model returned a result count of {} for {} pairs",
                    scored.len(),
                    chunk.len()
                ));
                results.extend(chunk.iter().map(|_| Err(failure.clone())));
            }
            Err(_) => {
                let failure =
                    PairFailure::ModelFailed("the model panicked while scoring".to_owned());
                results.extend(chunk.iter().map(|_| Err(failure.clone())));
            }
        }
    }
    metrics
        .model_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.pairs_scored.inc_by(pairs.len() as u64);
    let mut results = results.into_iter();
    for (count, reply) in replies {
        // The client may have hung up; its results are dropped.
        let _ = reply.send(results.by_ref().take(count).collect());
    }
    // The requests' records are freed once every client has its answer, not before.
    drop(pairs);
}
