package gateway.reader;

import java.io.File;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import org.apache.avro.Conversions;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads the gateway's topics the way a JVM consumer with no gateway code would, and prints every
 * record as one JSON line: {"topic", "partition", "offset", "key", "value"}.
 *
 * <pre>
 * java -cp ... gateway.reader.Main single-object BOOTSTRAP COUNT TOPIC=SCHEMA.avsc...
 * java -cp ... gateway.reader.Main apicurio BOOTSTRAP COUNT REGISTRY_V3_URL TOPIC...
 * </pre>
 *
 * single-object: Apache Avro's own BinaryMessageDecoder (C3 01 + CRC-64-AVRO fingerprint,
 * little-endian), one per topic with that topic's schema. apicurio: Apicurio Registry's Kafka
 * serde (Confluent wire format, writer schema fetched by id). Decimals print as plain strings,
 * timestamps as their long micros. Exits 1 if COUNT records do not arrive within 90 s.
 */
public final class Main {
    private static final Duration DEADLINE = Duration.ofSeconds(90);

    public static void main(String[] args) throws IOException {
        String mode = args[0];
        String bootstrap = args[1];
        int count = Integer.parseInt(args[2]);
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "standard-reader-" + UUID.randomUUID());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> topics = new ArrayList<>();
        Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();
        if (mode.equals("single-object")) {
            GenericData model = new GenericData();
            model.addLogicalTypeConversion(new Conversions.DecimalConversion());
            for (int i = 3; i < args.length; i++) {
                String[] pair = args[i].split("=", 2);
                Schema schema = new Schema.Parser().parse(new File(pair[1]));
                decoders.put(pair[0], new BinaryMessageDecoder<>(model, schema));
                topics.add(pair[0]);
            }
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        } else if (mode.equals("apicurio")) {
            props.put("apicurio.registry.url", args[3]);
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
                    "io.apicurio.registry.serde.avro.AvroKafkaDeserializer");
            for (int i = 4; i < args.length; i++) {
                topics.add(args[i]);
            }
        } else {
            throw new IllegalArgumentException("mode: single-object or apicurio, not " + mode);
        }
        int seen = 0;
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        try (KafkaConsumer<String, Object> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(topics);
            while (seen < count) {
                if (System.nanoTime() > deadline) {
                    System.err.println("only " + seen + " of " + count + " records arrived");
                    System.exit(1);
                }
                for (ConsumerRecord<String, Object> record : consumer.poll(Duration.ofMillis(500))) {
                    Object value = record.value();
                    if (value instanceof byte[] bytes) {
                        value = decoders.get(record.topic()).decode(bytes);
                    }
                    StringBuilder line = new StringBuilder("{\"topic\":");
                    json(line, record.topic());
                    line.append(",\"partition\":").append(record.partition());
                    line.append(",\"offset\":").append(record.offset());
                    line.append(",\"key\":");
                    json(line, record.key());
                    line.append(",\"value\":");
                    json(line, value, null);
                    System.out.println(line.append('}'));
                    seen++;
                }
            }
        }
        System.out.flush();
    }

    private static final Conversions.DecimalConversion DECIMALS = new Conversions.DecimalConversion();

    private static void json(StringBuilder out, Object value) {
        json(out, value, null);
    }

    /** {@code schema}, when known, turns decimal bytes (a serde with no conversions) into numbers. */
    private static void json(StringBuilder out, Object value, Schema schema) {
        if (schema != null && schema.getType() == Schema.Type.UNION && value != null) {
            schema = schema.getTypes().get(GenericData.get().resolveUnion(schema, value));
        }
        if (value instanceof ByteBuffer buffer && schema != null
                && schema.getLogicalType() instanceof LogicalTypes.Decimal decimal) {
            value = DECIMALS.fromBytes(buffer.duplicate(), schema, decimal);
        }
        if (value == null) {
            out.append("null");
        } else if (value instanceof GenericRecord record) {
            out.append('{');
            boolean first = true;
            for (Schema.Field field : record.getSchema().getFields()) {
                if (!first) out.append(',');
                first = false;
                json(out, field.name());
                out.append(':');
                json(out, record.get(field.pos()), field.schema());
            }
            out.append('}');
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                if (!first) out.append(',');
                first = false;
                json(out, entry.getKey().toString());
                out.append(':');
                json(out, entry.getValue(), schema == null ? null : schema.getValueType());
            }
            out.append('}');
        } else if (value instanceof List<?> list) {
            out.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) out.append(',');
                json(out, list.get(i), schema == null ? null : schema.getElementType());
            }
            out.append(']');
        } else if (value instanceof BigDecimal decimal) {
            json(out, decimal.toPlainString());
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value);
        } else if (value instanceof ByteBuffer buffer) {
            byte[] bytes = new byte[buffer.remaining()];
            buffer.duplicate().get(bytes);
            json(out, Base64.getEncoder().encodeToString(bytes));
        } else {
            String text = value.toString();
            out.append('"');
            for (char c : text.toCharArray()) {
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    default -> {
                        if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                        else out.append(c);
                    }
                }
            }
            out.append('"');
        }
    }
}
