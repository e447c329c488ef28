package schemas

// The Kafka topics of the data path, in the order records flow through them.
const (
	TopicRaw        = "usage.raw"        // ingest → dedupe: every accepted request record.
	TopicAccepted   = "usage.accepted"   // dedupe → rater, aggregator: first-seen records; admin → rater: corrections.
	TopicDuplicates = "usage.duplicates" // dedupe → aggregator: repeats, with the first claim.
	TopicRated      = "usage.rated"      // rater → aggregator: priced lines.
	TopicUnrated    = "usage.unrated"    // dedupe/rater → aggregator: records that could not be priced.
	TopicStatus     = "usage.status"     // rater → aggregator: status changes of records (invalidate, cancel).
)

// Topics lists every topic Kakin creates at migrate time.
var Topics = []string{TopicRaw, TopicAccepted, TopicDuplicates, TopicRated, TopicUnrated, TopicStatus}
