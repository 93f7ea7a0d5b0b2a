using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NSec.Cryptography;

namespace SecureMesh.Core.Identity;

/// <summary>Argon2id cost parameters, recorded in each encrypted key file so they can change later.</summary>
internal readonly record struct KdfParameters(int MemoryKiB, int Passes, int Parallelism)
{
    /// <summary>64 MiB, 3 passes: about a quarter of a second on the reference 2-core machine.</summary>
    public static KdfParameters Default { get; } = new(64 * 1024, 3, 1);

    // Bounds protect against a tampered file asking for absurd memory or time.
    public const int MinMemoryKiB = 8 * 1024;
    public const int MaxMemoryKiB = 1024 * 1024;
    public const int MaxPasses = 16;

    public bool IsValid => MemoryKiB is >= MinMemoryKiB and <= MaxMemoryKiB && Passes is >= 1 and <= MaxPasses && Parallelism == 1;
}

/// <summary>
/// The on-disk encodings of <c>identity.key</c> and <c>identity.pub</c> (format described in keys/README.md).
/// Decoding never throws anything but <see cref="SecureMeshException"/>, and its messages never hold key material.
/// </summary>
internal static class IdentityKeyFile
{
    public const int Version = 1;
    public const string KeyFileType = "securemesh-identity-key";
    public const string PubFileType = "securemesh-identity-pub";
    public const string Algorithm = "ed25519";
    public const string KdfNone = "none";
    public const string KdfArgon2id = "argon2id";
    public const string CipherNone = "none";
    public const string CipherXChaCha = "xchacha20-poly1305";
    public const int MaxFileLength = 16 * 1024;
    public const int SaltLength = 16;
    public const int ChecksumLength = 16;

    private static readonly AeadAlgorithm Aead = AeadAlgorithm.XChaCha20Poly1305;
    private static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 4 };

    /// <summary>Encodes the public file.</summary>
    public static byte[] EncodePublic(PeerId peerId)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("type", PubFileType);
            json.WriteNumber("version", Version);
            json.WriteString("algorithm", Algorithm);
            json.WriteBase64String("publicKey", peerId.PublicKey);
            json.WriteString("peerId", peerId.Text);
            json.WriteString("fingerprint", peerId.Fingerprint);
            json.WriteEndObject();
        }
        return [.. buffer.WrittenSpan, (byte)'\n'];
    }

    /// <summary>Decodes the public file; <paramref name="path"/> is only used in messages.</summary>
    public static PeerId DecodePublic(ReadOnlySpan<byte> contents, string path)
    {
        if (!System.Text.Unicode.Utf8.IsValid(contents))
        {
            throw Corrupt(path, "not a valid key file (not UTF-8 text; damaged?)");
        }
        try
        {
            using var doc = JsonDocument.Parse(contents.ToArray(), JsonOptions);
            var root = doc.RootElement;
            RequireHeader(root, PubFileType, path);
            Span<byte> key = stackalloc byte[PeerId.PublicKeyLength];
            if (!TryGetBase64(root, "publicKey", key))
            {
                throw Corrupt(path, "the public key is missing or not 32 bytes");
            }
            var peerId = PeerId.FromPublicKey(key);
            if (GetString(root, "peerId") != peerId.Text)
            {
                throw Corrupt(path, "the Peer ID does not match the public key");
            }
            if (GetString(root, "fingerprint") != peerId.Fingerprint)
            {
                throw Corrupt(path, "the fingerprint does not match the public key");
            }
            return peerId;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw Corrupt(path, "not a valid key file (truncated or damaged)");
        }
    }

    /// <summary>Encodes the private file, encrypting the seed when a passphrase is given.</summary>
    public static byte[] EncodePrivate(NodeIdentity identity, string? passphrase, KdfParameters kdf)
    {
        var encrypted = !string.IsNullOrEmpty(passphrase);
        Span<byte> salt = stackalloc byte[SaltLength];
        Span<byte> nonce = stackalloc byte[Aead.NonceSize];
        if (encrypted)
        {
            RandomNumberGenerator.Fill(salt);
            RandomNumberGenerator.Fill(nonce);
        }
        var header = new Header(
            identity.PublicKey,
            encrypted ? KdfArgon2id : KdfNone,
            encrypted ? salt.ToArray() : [],
            encrypted ? kdf : default,
            encrypted ? CipherXChaCha : CipherNone,
            encrypted ? nonce.ToArray() : []);
        var ad = header.AssociatedData();

        var secretLength = NodeIdentity.SeedLength + (encrypted ? Aead.TagSize : 0);
        var secret = new byte[secretLength];
        Span<byte> seed = stackalloc byte[NodeIdentity.SeedLength];
        // Sized so it never grows: a grown buffer would leave an unwiped copy of the seed behind.
        var buffer = new ArrayBufferWriter<byte>(4096);
        try
        {
            identity.ExportSeed(seed);
            if (encrypted)
            {
                using var key = DeriveKey(passphrase!, header.Salt, kdf);
                Aead.Encrypt(key, header.Nonce, ad, seed, secret);
            }
            else
            {
                seed.CopyTo(secret);
            }
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                json.WriteString("type", KeyFileType);
                json.WriteNumber("version", Version);
                json.WriteString("algorithm", Algorithm);
                json.WriteBase64String("publicKey", header.PublicKey);
                json.WriteString("kdf", header.Kdf);
                if (encrypted)
                {
                    json.WriteStartObject("kdfParams");
                    json.WriteBase64String("salt", header.Salt);
                    json.WriteNumber("memoryKiB", kdf.MemoryKiB);
                    json.WriteNumber("passes", kdf.Passes);
                    json.WriteNumber("parallelism", kdf.Parallelism);
                    json.WriteEndObject();
                }
                json.WriteString("cipher", header.Cipher);
                if (encrypted)
                {
                    json.WriteBase64String("nonce", header.Nonce);
                }
                json.WriteBase64String("secret", secret);
                json.WriteBase64String("checksum", Checksum(ad, secret));
                json.WriteEndObject();
            }
            return [.. buffer.WrittenSpan, (byte)'\n'];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            CryptographicOperations.ZeroMemory(secret);
            buffer.Clear();
        }
    }

    /// <summary>True when the private file's seed is passphrase-protected.</summary>
    public static bool IsEncrypted(ReadOnlySpan<byte> contents, string path)
    {
        var (header, secret) = ParsePrivate(contents, path);
        CryptographicOperations.ZeroMemory(secret);
        return header.Kdf != KdfNone;
    }

    /// <summary>Test seam: the file with its checksum recomputed, to show that the AEAD alone catches an edited header.</summary>
    internal static byte[] WithRecomputedChecksum(ReadOnlySpan<byte> contents)
    {
        var (header, secret) = ParsePrivate(contents, "test", verifyChecksum: false);
        var text = Encoding.UTF8.GetString(contents);
        using var doc = JsonDocument.Parse(text);
        var old = doc.RootElement.GetProperty("checksum").GetString()!;
        var fresh = Convert.ToBase64String(Checksum(header.AssociatedData(), secret));
        return Encoding.UTF8.GetBytes(text.Replace(old, fresh, StringComparison.Ordinal));
    }

    /// <summary>Decodes the private file; <paramref name="passphrase"/> is called only for an encrypted file.</summary>
    public static NodeIdentity DecodePrivate(ReadOnlySpan<byte> contents, string path, Func<string?> passphrase)
    {
        var parsed = ParsePrivate(contents, path);
        var header = parsed.Header;
        Span<byte> seed = stackalloc byte[NodeIdentity.SeedLength];
        try
        {
            if (header.Kdf == KdfNone)
            {
                parsed.Secret.AsSpan().CopyTo(seed);
            }
            else
            {
                var pass = passphrase();
                if (string.IsNullOrEmpty(pass))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.WrongPassphrase, $"a passphrase is needed to unlock {path}");
                }
                using var key = DeriveKey(pass, header.Salt, header.KdfParameters);
                if (!Aead.Decrypt(key, header.Nonce, header.AssociatedData(), parsed.Secret, seed))
                {
                    // The checksum already matched, so the file is intact: the passphrase is wrong.
                    throw new SecureMeshException(SecureMeshErrorKind.WrongPassphrase, $"wrong passphrase for {path}");
                }
            }
            var identity = NodeIdentity.FromSeed(seed);
            if (!identity.PublicKey.AsSpan().SequenceEqual(header.PublicKey))
            {
                identity.Dispose();
                throw Corrupt(path, "the private key does not match the public key stored with it");
            }
            return identity;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            CryptographicOperations.ZeroMemory(parsed.Secret);
        }
    }

    internal static SecureMeshException Corrupt(string path, string reason) =>
        new(SecureMeshErrorKind.Identity, $"identity file {path} is unusable: {reason}");

    private static (Header Header, byte[] Secret) ParsePrivate(ReadOnlySpan<byte> contents, string path, bool verifyChecksum = true)
    {
        if (!System.Text.Unicode.Utf8.IsValid(contents))
        {
            throw Corrupt(path, "not a valid key file (not UTF-8 text; damaged?)");
        }
        var copy = contents.ToArray();
        try
        {
            using var doc = JsonDocument.Parse(copy, JsonOptions);
            var root = doc.RootElement;
            RequireHeader(root, KeyFileType, path);
            var publicKey = new byte[PeerId.PublicKeyLength];
            if (!TryGetBase64(root, "publicKey", publicKey))
            {
                throw Corrupt(path, "the public key is missing or not 32 bytes");
            }
            var kdfName = GetString(root, "kdf");
            var cipher = GetString(root, "cipher");
            Header header;
            if (kdfName == KdfNone && cipher == CipherNone)
            {
                header = new Header(publicKey, KdfNone, [], default, CipherNone, []);
            }
            else if (kdfName == KdfArgon2id && cipher == CipherXChaCha)
            {
                if (!root.TryGetProperty("kdfParams", out var p) || p.ValueKind != JsonValueKind.Object)
                {
                    throw Corrupt(path, "the key derivation parameters are missing");
                }
                var salt = new byte[SaltLength];
                var nonce = new byte[Aead.NonceSize];
                if (!TryGetBase64(p, "salt", salt) || !TryGetBase64(root, "nonce", nonce))
                {
                    throw Corrupt(path, "the salt or nonce is missing or has the wrong length");
                }
                var kdf = new KdfParameters(GetInt(p, "memoryKiB"), GetInt(p, "passes"), GetInt(p, "parallelism"));
                if (!kdf.IsValid)
                {
                    throw Corrupt(path, "the key derivation parameters are out of range");
                }
                header = new Header(publicKey, KdfArgon2id, salt, kdf, CipherXChaCha, nonce);
            }
            else
            {
                throw Corrupt(path, "unsupported encryption (expected kdf none or argon2id)");
            }

            var secret = new byte[NodeIdentity.SeedLength + (header.Kdf == KdfNone ? 0 : Aead.TagSize)];
            Span<byte> checksum = stackalloc byte[ChecksumLength];
            if (!TryGetBase64(root, "secret", secret))
            {
                CryptographicOperations.ZeroMemory(secret);
                throw Corrupt(path, "the private key is missing or has the wrong length");
            }
            if (verifyChecksum && (!TryGetBase64(root, "checksum", checksum)
                || !CryptographicOperations.FixedTimeEquals(checksum, Checksum(header.AssociatedData(), secret))))
            {
                CryptographicOperations.ZeroMemory(secret);
                throw Corrupt(path, "checksum mismatch (the file is damaged)");
            }
            return (header, secret);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw Corrupt(path, "not a valid key file (truncated or damaged)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }

    private static void RequireHeader(JsonElement root, string type, string path)
    {
        if (root.ValueKind != JsonValueKind.Object || GetString(root, "type") != type)
        {
            throw Corrupt(path, $"not a SecureMesh {(type == KeyFileType ? "private" : "public")} key file");
        }
        var version = GetInt(root, "version");
        if (version != Version)
        {
            throw Corrupt(path, $"unsupported format version {version} (this SecureMesh reads version {Version})");
        }
        if (GetString(root, "algorithm") != Algorithm)
        {
            throw Corrupt(path, "unsupported algorithm (only ed25519 is supported)");
        }
    }

    private static string? GetString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int GetInt(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : -1;

    /// <summary>Decodes a canonical base64 property of exactly <c>destination.Length</c> bytes, without making a string of it.</summary>
    private static bool TryGetBase64(JsonElement obj, string name, Span<byte> destination)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String || !v.TryGetBytesFromBase64(out var bytes))
        {
            return false;
        }
        try
        {
            if (bytes.Length != destination.Length)
            {
                return false;
            }
            // Canonical form only: base64 ignores the padding bits of the last character, which would let a damaged file pass.
            Span<byte> canonical = stackalloc byte[((destination.Length + 2) / 3) * 4];
            try
            {
                Base64.EncodeToUtf8(bytes, canonical, out _, out _);
                if (!v.ValueEquals(canonical))
                {
                    return false;
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(canonical);
            }
            bytes.CopyTo(destination);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static byte[] Checksum(ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> secret)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(associatedData);
        sha.AppendData(secret);
        return sha.GetHashAndReset()[..ChecksumLength];
    }

    private static Key DeriveKey(string passphrase, byte[] salt, KdfParameters kdf)
    {
        var argon = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            MemorySize = kdf.MemoryKiB,
            NumberOfPasses = kdf.Passes,
            DegreeOfParallelism = kdf.Parallelism,
        });
        var passBytes = Encoding.UTF8.GetBytes(passphrase);
        Span<byte> keyBytes = stackalloc byte[Aead.KeySize];
        try
        {
            argon.DeriveBytes(passBytes, salt, keyBytes);
            return Key.Import(Aead, keyBytes, KeyBlobFormat.RawSymmetricKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyBytes);
            CryptographicOperations.ZeroMemory(passBytes);
        }
    }

    /// <summary>Everything in the file but the secret: bound to the ciphertext as associated data.</summary>
    private sealed record Header(byte[] PublicKey, string Kdf, byte[] Salt, KdfParameters KdfParameters, string Cipher, byte[] Nonce)
    {
        public byte[] AssociatedData()
        {
            var writer = new ArrayBufferWriter<byte>(256);
            Append(writer, Encoding.ASCII.GetBytes(KeyFileType));
            AppendUInt32(writer, Version);
            Append(writer, Encoding.ASCII.GetBytes(Algorithm));
            Append(writer, PublicKey);
            Append(writer, Encoding.ASCII.GetBytes(Kdf));
            Append(writer, Salt);
            AppendUInt32(writer, (uint)KdfParameters.MemoryKiB);
            AppendUInt32(writer, (uint)KdfParameters.Passes);
            AppendUInt32(writer, (uint)KdfParameters.Parallelism);
            Append(writer, Encoding.ASCII.GetBytes(Cipher));
            Append(writer, Nonce);
            return writer.WrittenSpan.ToArray();
        }

        private static void Append(ArrayBufferWriter<byte> writer, ReadOnlySpan<byte> field)
        {
            AppendUInt32(writer, (uint)field.Length);
            writer.Write(field);
        }

        private static void AppendUInt32(ArrayBufferWriter<byte> writer, uint value)
        {
            BinaryPrimitives.WriteUInt32BigEndian(writer.GetSpan(4), value);
            writer.Advance(4);
        }
    }
}
