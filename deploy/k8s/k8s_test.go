// Package k8s holds the Kubernetes manifests: a kustomize base (one
// Deployment per role, the migration Job, PodDisruptionBudgets, probes,
// autoscaling) and overlays. The test renders every overlay with kustomize's
// own library, offline, and decodes every object strictly into the
// Kubernetes API types, so a misspelt field fails `make test`.
package k8s

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/app"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

var roles = []string{"ingest", "dedupe", "rater", "aggregator", "admin"}

// consumers are the roles that read Kafka in a consumer group: they scale
// on lag.
var consumers = []string{"dedupe", "rater", "aggregator"}

// decoder decodes YAML strictly (unknown and duplicate fields fail) into the
// API types Kakin's manifests use; any other kind fails too.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// memFS copies deploy/k8s into an in-memory file system, with extra files
// (the dev overlay's generated secrets, which are never committed).
func memFS(t *testing.T, extra map[string]string) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k8s", path), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, content := range extra {
		if err := mem.WriteFile(filepath.Join("/k8s", path), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

var devSecrets = map[string]string{
	"overlays/dev/secrets/token-keys":          "k1 dGVzdC10b2tlbi1rZXktb2YtdGhpcnR5LXR3by1ieXRlcw\n",
	"overlays/dev/secrets/master-key":          "m1 dGVzdC1tYXN0ZXIta2V5LW9mLXRoaXJ0eS10d28tYnl0ZQ\n",
	"overlays/dev/secrets/clickhouse-password": "test",
}

// rendered is one overlay's objects, decoded.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler // by target
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
	services    map[string]*corev1.Service
	pvcs        map[string]*corev1.PersistentVolumeClaim
	namespace   string
}

func render(t *testing.T, fsys filesys.FileSystem, dir string) *rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	dec := decoder(t)
	r := &rendered{deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := dec.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s: %s/%s does not decode strictly: %v\n%s", dir, res.GetKind(), res.GetName(), err, y)
			continue
		}
		meta := obj.(metav1.Object)
		if r.namespace == "" {
			r.namespace = meta.GetNamespace()
		} else if meta.GetNamespace() != r.namespace {
			t.Errorf("%s: %s in namespace %q, others in %q", dir, meta.GetName(), meta.GetNamespace(), r.namespace)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments[o.Name] = o
		case *batchv1.Job:
			r.jobs[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas[o.Spec.ScaleTargetRef.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *corev1.PersistentVolumeClaim:
			r.pvcs[o.Name] = o
		case *corev1.ServiceAccount:
		default:
			t.Errorf("%s: unexpected %T", dir, obj)
		}
	}
	if r.namespace == "" {
		t.Errorf("%s: no namespace", dir)
	}
	return r
}

// TestOverlays renders each overlay and checks what every installation
// needs.
func TestOverlays(t *testing.T) {
	fsys := memFS(t, devSecrets)
	for _, overlay := range []string{"dev", "production"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, fsys, "/k8s/overlays/"+overlay)
			checkRoles(t, r)
			checkMigrate(t, r)
			if overlay == "dev" {
				for _, s := range []string{"kakin-keys", "kakin-clickhouse"} {
					if !hasSecretPrefix(r, s) {
						t.Errorf("dev: Secret %s not generated", s)
					}
				}
			}
			if overlay == "production" {
				if len(r.secrets) != 0 {
					t.Errorf("production: Secrets in the manifests (%d): they are created out of band", len(r.secrets))
				}
				ing := r.deployments["kakin-ingest"]
				if v := volume(ing, "imports"); v == nil || v.PersistentVolumeClaim == nil || v.EmptyDir != nil {
					t.Errorf("production: ingest's import spool is not the shared claim: %+v", v)
				} else if _, ok := r.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("production: claim %s not in the manifests", v.PersistentVolumeClaim.ClaimName)
				}
				if cm := r.configMaps["kakin-config"]; cm == nil || cm.Data["KAKIN_KAFKA_TLS"] != "true" || cm.Data["KAKIN_KAFKA_SASL_MECHANISM"] == "" {
					t.Errorf("production: Kafka without TLS and SASL")
				}
				for _, c := range consumers {
					if d := r.deployments["kakin-"+c]; d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
						t.Errorf("production: %s replicas %v, want 3", c, d.Spec.Replicas)
					}
				}
			}
		})
	}
}

func hasSecretPrefix(r *rendered, name string) bool {
	for n := range r.secrets {
		if n == name || strings.HasPrefix(n, name+"-") { // the generator appends a content hash
			return true
		}
	}
	return false
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

func checkRoles(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.deployments) != len(roles) {
		t.Errorf("%d Deployments, want one per role (%v)", len(r.deployments), roles)
	}
	for _, role := range roles {
		d, ok := r.deployments["kakin-"+role]
		if !ok {
			t.Errorf("no Deployment for role %s", role)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its pods' labels %v", role, d.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, other := range r.deployments {
			if other != d && sel.Matches(labels.Set(other.Spec.Template.Labels)) {
				t.Errorf("%s: selector also matches %s's pods", role, other.Name)
			}
		}
		pod := d.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", role, len(pod.Containers))
		}
		c := pod.Containers[0]
		if !slices.Equal(c.Args, []string{"serve", "--roles=" + role}) {
			t.Errorf("%s: args %v", role, c.Args)
		}
		if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q: want a pinned tag", role, c.Image)
		}
		probe := func(name string, p *corev1.Probe, path string) {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
				t.Errorf("%s: %s probe is not GET %s on the http port: %+v", role, name, path, p)
			}
		}
		probe("liveness", c.LivenessProbe, "/healthz")
		probe("startup", c.StartupProbe, "/healthz")
		probe("readiness", c.ReadinessProbe, "/readyz")
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
			t.Errorf("%s: ports %+v", role, c.Ports)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit", role, c.Resources)
		}
		if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
			c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: not a non-root, read-only container", role)
		}
		checkEnv(t, r, role, c)
		keys := volume(d, "keys")
		if keys == nil || keys.Secret == nil || !hasSecretRef(r, keys.Secret.SecretName, "kakin-keys") {
			t.Errorf("%s: the keys volume is not the kakin-keys Secret: %+v", role, keys)
		}
		// A PodDisruptionBudget covers the role.
		covered := false
		for _, p := range r.pdbs {
			s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err == nil && s.Matches(labels.Set(d.Spec.Template.Labels)) {
				covered = true
				if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
					t.Errorf("%s: PodDisruptionBudget %s sets no budget", role, p.Name)
				}
			}
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget", role)
		}
		hpa, ok := r.hpas[d.Name]
		if !ok {
			t.Errorf("%s: no HorizontalPodAutoscaler", role)
		} else if hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("%s: autoscaler targets a %s", role, hpa.Spec.ScaleTargetRef.Kind)
		}
		if slices.Contains(consumers, role) {
			if !scalesOnLag(hpa, role) {
				t.Errorf("%s: a consumer role not scaled on kakin_stage_consumer_lag_records{stage=%q}", role, role)
			}
			if hpa != nil && hpa.Spec.MaxReplicas > 12 {
				t.Errorf("%s: up to %d replicas; more than the partitions (12) would idle", role, hpa.Spec.MaxReplicas)
			}
		}
	}
	for _, s := range []string{"kakin-ingest", "kakin-admin"} {
		svc, ok := r.services[s]
		if !ok {
			t.Errorf("no Service %s", s)
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if d := r.deployments[s]; d == nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s does not select its Deployment's pods", s)
		}
	}
}

func scalesOnLag(h *autoscalingv2.HorizontalPodAutoscaler, role string) bool {
	if h == nil {
		return false
	}
	for _, m := range h.Spec.Metrics {
		if m.Type == autoscalingv2.ExternalMetricSourceType && m.External != nil &&
			m.External.Metric.Name == "kakin_stage_consumer_lag_records" && m.External.Metric.Selector != nil &&
			m.External.Metric.Selector.MatchLabels["stage"] == role {
			return true
		}
	}
	return false
}

func hasSecretRef(r *rendered, name, base string) bool {
	if name != base && !strings.HasPrefix(name, base+"-") {
		return false
	}
	if len(r.secrets) == 0 {
		return true // created out of band (production)
	}
	_, ok := r.secrets[name]
	return ok
}

// checkEnv checks that the configuration a Kakin process needs reaches the
// container: the ConfigMap it names exists with the addresses and key
// files, and the ClickHouse password comes from a Secret.
func checkEnv(t *testing.T, r *rendered, what string, c corev1.Container) {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		cm, ok := r.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: ConfigMap %s not in the manifests", what, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, k := range []string{"KAKIN_HTTP_ADDR", "KAKIN_KAFKA_BROKERS", "KAKIN_REDIS_ADDR", "KAKIN_CLICKHOUSE_ADDR", "KAKIN_TOKEN_KEYS_FILE", "KAKIN_MASTER_KEY_FILE"} {
		if env[k] == "" {
			t.Errorf("%s: %s not configured", what, k)
		}
	}
	for k := range env {
		if !strings.HasPrefix(k, "KAKIN_") {
			t.Errorf("%s: %s is not a Kakin setting", what, k)
		}
	}
	pw, kafkaPW := false, false
	for _, e := range c.Env {
		if e.Name == "KAKIN_CLICKHOUSE_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			hasSecretRef(r, e.ValueFrom.SecretKeyRef.Name, "kakin-clickhouse") {
			pw = true
		}
		if e.Name == "KAKIN_KAFKA_SASL_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == "kakin-kafka" && e.ValueFrom.SecretKeyRef.Key == "password" {
			kafkaPW = true
		}
	}
	if !pw {
		t.Errorf("%s: KAKIN_CLICKHOUSE_PASSWORD does not come from the kakin-clickhouse Secret", what)
	}
	if !kafkaPW {
		t.Errorf("%s: KAKIN_KAFKA_SASL_PASSWORD does not come from the kakin-kafka Secret", what)
	}
	if _, plain := env["KAKIN_KAFKA_SASL_PASSWORD"]; plain {
		t.Errorf("%s: the Kafka SASL password is in a ConfigMap, not a Secret", what)
	}
	// The settings must be ones kakin validates: a SASL mechanism with
	// its user (the password is the Secret's).
	k := app.KafkaConfig{Brokers: env["KAKIN_KAFKA_BROKERS"], SASLMechanism: env["KAKIN_KAFKA_SASL_MECHANISM"],
		SASLUsername: env["KAKIN_KAFKA_SASL_USERNAME"]}
	if k.SASLMechanism != "" {
		k.SASLPassword = "from-the-secret"
	}
	if err := k.Validate(); err != nil {
		t.Errorf("%s: kafka settings: %v", what, err)
	}
}

func checkMigrate(t *testing.T, r *rendered) {
	t.Helper()
	j, ok := r.jobs["kakin-migrate"]
	if !ok {
		t.Fatal("no migrate Job")
	}
	pod := j.Spec.Template.Spec
	if len(pod.Containers) != 1 || !slices.Equal(pod.Containers[0].Args, []string{"migrate"}) {
		t.Errorf("migrate Job does not run kakin migrate: %+v", pod.Containers)
	}
	if pod.RestartPolicy != corev1.RestartPolicyOnFailure && pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("migrate Job restart policy %q", pod.RestartPolicy)
	}
	checkEnv(t, r, "migrate", pod.Containers[0])
	if img := r.deployments["kakin-rater"].Spec.Template.Spec.Containers[0].Image; pod.Containers[0].Image != img {
		t.Errorf("migrate runs %s, the roles %s", pod.Containers[0].Image, img)
	}
}

// TestStrictDecodingCatchesATypo proves the check is strict: a misspelt
// field in a Deployment (readinesProbe) fails to render-and-decode.
func TestStrictDecodingCatchesATypo(t *testing.T) {
	b, err := os.ReadFile("base/deployment-rater.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "readinessProbe:", "readinesProbe:", 1)
	if bad == string(b) {
		t.Fatal("no readinessProbe in the rater's Deployment")
	}
	fsys := memFS(t, devSecrets)
	if err := fsys.WriteFile("/k8s/base/deployment-rater.yaml", []byte(bad)); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/k8s/overlays/dev")
	if err != nil {
		return // kustomize refused it already
	}
	dec := decoder(t)
	for _, res := range m.Resources() {
		if res.GetName() != "kakin-rater" || res.GetKind() != "Deployment" {
			continue
		}
		y, _ := res.AsYAML()
		if _, _, err := dec.Decode(y, nil, nil); err == nil || !runtime.IsStrictDecodingError(err) {
			t.Fatalf("a misspelt field decoded: %v", err)
		} else {
			t.Logf("refused as expected: %v", err)
		}
		return
	}
	t.Fatal(fmt.Sprint("kakin-rater not rendered"))
}
