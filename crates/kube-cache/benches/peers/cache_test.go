package peermicro

import (
	"k8s.io/apimachinery/pkg/types"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
)

func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/pod-%d", prefix, i)
	}
	return out
}

// queue/add_get_done_distinct_keys
func BenchmarkQueueAddGetDoneDistinctKeys(b *testing.B) {
	q := workqueue.NewTyped[string]()
	ks := keys("default", 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Add(ks[i%len(ks)])
		item, _ := q.Get()
		q.Done(item)
	}
}

// queue/add_dedup_hit
func BenchmarkQueueAddDedupHit(b *testing.B) {
	q := workqueue.NewTyped[string]()
	for _, k := range keys("default", 1000) {
		q.Add(k)
	}
	key := "default/pod-500"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Add(key)
	}
	b.StopTimer()
	if q.Len() != 1000 {
		b.Fatal("len", q.Len())
	}
}

// queue/8_producers/{1,2,8}_workers: ns/op is per 80k-item run
func BenchmarkQueue8Producers(b *testing.B) {
	const producers, perProducer = 8, 10000
	for _, workers := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("%d_workers", workers), func(b *testing.B) {
			var total time.Duration
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				sets := make([][]string, producers)
				for p := range sets {
					sets[p] = keys(fmt.Sprintf("ns-%d", p), perProducer)
				}
				b.StartTimer()
				q := workqueue.NewTyped[string]()
				var processed int64
				n := int64(producers * perProducer)
				start := time.Now()
				var wg sync.WaitGroup
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							item, shutdown := q.Get()
							if shutdown {
								return
							}
							q.Done(item)
							if atomic.AddInt64(&processed, 1) == n {
								q.ShutDown()
							}
						}
					}()
				}
				for p := 0; p < producers; p++ {
					wg.Add(1)
					go func(ks []string) {
						defer wg.Done()
						for i, k := range ks {
							q.Add(k)
							if i%256 == 255 {
								runtime.Gosched() // as the Rust producers yield every 256 adds
							}
						}
					}(sets[p])
				}
				wg.Wait()
				total += time.Since(start)
			}
			b.ReportMetric(float64(producers*perProducer)*float64(b.N)/total.Seconds()/1e6, "Mitems/s")
		})
	}
}

// delaying/add_after_100k_over_0_50ms: ns/op is per 100k-item run
func BenchmarkDelayingAddAfter100kOver0to50ms(b *testing.B) {
	const n = 100000
	rng := rand.New(rand.NewSource(7))
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		ks := keys("default", n)
		delays := make([]time.Duration, n)
		for i := range delays {
			delays[i] = time.Duration(rng.Int63n(50_000_000))
		}
		b.StartTimer()
		q := workqueue.NewTypedDelayingQueue[string]()
		done := make(chan struct{})
		go func() {
			for i := 0; i < n; i++ {
				item, _ := q.Get()
				q.Done(item)
			}
			close(done)
		}()
		for i, k := range ks {
			q.AddAfter(k, delays[i])
		}
		<-done
		b.StopTimer()
		q.ShutDown()
		b.StartTimer()
	}
}

// rate_limiter/default_controller_when_1000_keys
func BenchmarkDefaultControllerWhen1000Keys(b *testing.B) {
	rl := workqueue.DefaultTypedControllerRateLimiter[string]()
	ks := keys("default", 1000)
	i := 0
	var sink time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		i = (i + 1) % len(ks)
		sink += rl.When(ks[i])
	}
	_ = sink
}

// rate/allow/uncontended
func BenchmarkRateAllowUncontended(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(1e12), 1_000_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Allow()
	}
}

// rate/allow/{2,8}-tasks (extra): RunParallel on GOMAXPROCS=2, parallelism 1 -> 2 goroutines, 4 -> 8
func BenchmarkRateAllowParallel(b *testing.B) {
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("%d-goroutines", par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			l := rate.NewLimiter(rate.Limit(1e12), 1_000_000)
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow()
				}
			})
		})
	}
}

// throttle/try_accept
func BenchmarkThrottleTryAccept(b *testing.B) {
	t := flowcontrol.NewTokenBucketRateLimiter(1e12, 1_000_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.TryAccept()
	}
}

// backoff/next/1000-ids (extra)
func BenchmarkBackoffNext1000Ids(b *testing.B) {
	bo := flowcontrol.NewBackOff(time.Millisecond, 60*time.Second)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("namespace/object-%d", i)
	}
	i := 0
	ev := time.Now()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		id := ids[i]
		i++
		if i == len(ids) {
			i = 0
			ev = time.Now()
		}
		bo.Next(id, ev)
	}
}


// ---- kube-cache (issue 13): the same operations as crates/kube-cache/benches/cache.rs ----
// 100k small pods (name, namespace, uid, one label), 100 namespaces of 1000.

const cachePods = 100000

func cachePod(i, version int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:            fmt.Sprintf("pod-%d", i),
		Namespace:       fmt.Sprintf("ns-%d", i%100),
		UID:             types.UID("uid-" + fmt.Sprint(i)),
		ResourceVersion: fmt.Sprint(version),
		Labels:          map[string]string{"app": fmt.Sprintf("app-%d", i%10)},
	}}
}

func cachePodList(version int) []*corev1.Pod {
	out := make([]*corev1.Pod, cachePods)
	for i := range out {
		out[i] = cachePod(i, version)
	}
	return out
}

func newNamespaceIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// indexer/add_100k_pods_namespace_index: add into an indexer filled from empty to 100k.
func BenchmarkIndexerAdd100kPodsNamespaceIndex(b *testing.B) {
	pods := cachePodList(1)
	indexer := newNamespaceIndexer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%cachePods == 0 {
			b.StopTimer()
			indexer = newNamespaceIndexer()
			b.StartTimer()
		}
		indexer.Add(pods[i%cachePods])
	}
}

func filledIndexer(pods []*corev1.Pod) cache.Indexer {
	indexer := newNamespaceIndexer()
	for _, p := range pods {
		indexer.Add(p)
	}
	return indexer
}

// indexer/update_100k_pods_namespace_index: update one of 100k stored pods with a new object.
func BenchmarkIndexerUpdate100kPodsNamespaceIndex(b *testing.B) {
	v1, v2 := cachePodList(1), cachePodList(2)
	indexer := filledIndexer(v1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pods := v2
		if (i/cachePods)%2 == 1 {
			pods = v1
		}
		indexer.Update(pods[i%cachePods])
	}
}

// indexer/by_index_namespace_1000_of_100k
func BenchmarkIndexerByIndexNamespace1000Of100k(b *testing.B) {
	indexer := filledIndexer(cachePodList(1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pods, err := indexer.ByIndex(cache.NamespaceIndex, "ns-7")
		if err != nil || len(pods) != 1000 {
			b.Fatal(err, len(pods))
		}
	}
}

// indexer/get_by_key_100k
func BenchmarkIndexerGetByKey100k(b *testing.B) {
	indexer := filledIndexer(cachePodList(1))
	keys := make([]string, cachePods)
	for i := range keys {
		keys[i] = fmt.Sprintf("ns-%d/pod-%d", i%100, i)
	}
	k := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k = (k + 7919) % cachePods
		indexer.GetByKey(keys[k])
	}
}

// delta_fifo/add: add of a new key (queues of up to 100k keys).
func BenchmarkDeltaFIFOAdd(b *testing.B) {
	pods := cachePodList(1)
	fifo := cache.NewDeltaFIFOWithOptions(cache.DeltaFIFOOptions{KeyFunction: cache.MetaNamespaceKeyFunc})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%cachePods == 0 {
			b.StopTimer()
			fifo = cache.NewDeltaFIFOWithOptions(cache.DeltaFIFOOptions{KeyFunction: cache.MetaNamespaceKeyFunc})
			b.StartTimer()
		}
		fifo.Add(pods[i%cachePods])
	}
}

// delta_fifo/pop: pop of a key with one delta, process function doing nothing.
func BenchmarkDeltaFIFOPop(b *testing.B) {
	pods := cachePodList(1)
	process := func(obj interface{}, isInInitialList bool) error { return nil }
	left := b.N
	b.ResetTimer()
	for left > 0 {
		n := min(left, cachePods)
		b.StopTimer()
		fifo := cache.NewDeltaFIFOWithOptions(cache.DeltaFIFOOptions{KeyFunction: cache.MetaNamespaceKeyFunc})
		for _, p := range pods[:n] {
			fifo.Add(p)
		}
		b.StartTimer()
		for j := 0; j < n; j++ {
			if _, err := fifo.Pop(process); err != nil {
				b.Fatal(err)
			}
		}
		left -= n
	}
}
