using SecureMesh.Core.Content;

namespace SecureMesh.Core.Tests.Content;

public class ChunkBitfieldTests
{
    [Fact]
    public void Set_clear_and_count()
    {
        var field = new ChunkBitfield(11);
        Assert.Equal(2, field.Bytes.Length);
        field.Set(0);
        field.Set(10);
        field.Set(10);
        Assert.Equal(2, field.SetCount);
        Assert.True(field.IsSet(0));
        Assert.True(field.IsSet(10));
        Assert.False(field.IsSet(5));
        Assert.False(field.IsSet(11));
        Assert.False(field.IsSet(-1));
        Assert.Equal(0x80, field.Bytes[0]);
        Assert.Equal(0x20, field.Bytes[1]);
        field.Clear(0);
        Assert.Equal(1, field.SetCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => field.Set(11));
        Assert.True(ChunkBitfield.All(11).IsComplete);
    }

    [Fact]
    public void From_bytes_round_trips_and_rejects_spare_bits_or_wrong_length()
    {
        var field = new ChunkBitfield(11);
        field.Set(3);
        field.Set(9);
        Assert.True(ChunkBitfield.TryFromBytes(11, field.Bytes, out var copy));
        Assert.Equal(2, copy.SetCount);
        Assert.True(copy.IsSet(9));
        Assert.False(ChunkBitfield.TryFromBytes(11, [0, 0x10], out _));
        Assert.False(ChunkBitfield.TryFromBytes(11, [0], out _));
        Assert.False(ChunkBitfield.TryFromBytes(11, [0, 0, 0], out _));
        Assert.False(ChunkBitfield.TryFromBytes(-1, [], out _));
        Assert.True(ChunkBitfield.TryFromBytes(16, [0xFF, 0xFF], out var full));
        Assert.True(full.IsComplete);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(ChunkLayout.MaxChunkCount)]
    public void All_sets_every_chunk_and_no_spare_bit_even_at_the_largest_count(long count)
    {
        var all = ChunkBitfield.All(count);
        Assert.True(all.IsComplete);
        Assert.Equal(count, all.SetCount);
        // The packed form round-trips, which also proves the spare bits of the last byte are zero.
        Assert.True(ChunkBitfield.TryFromBytes(count, all.Bytes, out var back));
        Assert.Equal(count, back.SetCount);
        Assert.True(all.IsSet(count - 1) || count == 0);
        Assert.False(all.IsSet(count));
    }
}
