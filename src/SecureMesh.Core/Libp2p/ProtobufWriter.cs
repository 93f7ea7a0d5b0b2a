using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// Writes the few protobuf field kinds libp2p's small control messages use (varints and length-delimited bytes), in the
/// order they are written: callers write fields in field-number order, so the output is the canonical encoding.
/// </summary>
internal sealed class ProtobufWriter
{
    private readonly MemoryStream _output = new();

    /// <summary>Bytes written so far.</summary>
    public int Length => (int)_output.Length;

    public ProtobufWriter Varint(int field, ulong value)
    {
        WriteRaw(((ulong)field << 3) | ProtobufReader.WireTypeVarint);
        WriteRaw(value);
        return this;
    }

    public ProtobufWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        WriteRaw(((ulong)field << 3) | ProtobufReader.WireTypeLengthDelimited);
        WriteRaw((ulong)value.Length);
        _output.Write(value);
        return this;
    }

    public byte[] ToArray() => _output.ToArray();

    private void WriteRaw(ulong value)
    {
        Span<byte> scratch = stackalloc byte[Wire.Varint.MaxLength64];
        _output.Write(scratch[..Wire.Varint.Write(scratch, value)]);
    }
}
