using System.Diagnostics.CodeAnalysis;
using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>
/// The shape of a content ID: <c>b3:</c> followed by lowercase RFC 4648 base32 (a–z, 2–7, no padding).
/// Checked loosely (prefix, alphabet, 16–128 characters after the prefix) so the hashing code owns the exact length.
/// </summary>
public static class ContentIdFormat
{
    /// <summary>The algorithm prefix of BLAKE3 content IDs.</summary>
    public const string Prefix = "b3:";

    private const int MinBody = 16;
    private const int MaxBody = 128;

    /// <summary>True when <paramref name="contentId"/> looks like a content ID; otherwise <paramref name="error"/> says why.</summary>
    public static bool IsValid([NotNullWhen(true)] string? contentId, [NotNullWhen(false)] out string? error)
    {
        if (string.IsNullOrEmpty(contentId))
        {
            error = "invalid content ID: empty";
            return false;
        }
        var shown = contentId.Length > 40 ? contentId[..40] + "…" : contentId;
        if (!contentId.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = $"invalid content ID '{shown}': must start with '{Prefix}'";
            return false;
        }
        var body = contentId.AsSpan(Prefix.Length);
        if (body.Length is < MinBody or > MaxBody)
        {
            error = $"invalid content ID '{shown}': expected {MinBody} to {MaxBody} base32 characters after '{Prefix}', got {body.Length}";
            return false;
        }
        foreach (var c in body)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '2' and <= '7')))
            {
                error = $"invalid content ID '{shown}': only lowercase base32 (a-z, 2-7) may follow '{Prefix}'";
                return false;
            }
        }
        error = null;
        return true;
    }

    /// <summary>Throws <see cref="SecureMeshException"/> (InvalidInput) unless <paramref name="contentId"/> looks like a content ID.</summary>
    public static void Validate([NotNull] string? contentId)
    {
        if (!IsValid(contentId, out var error))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
        }
    }
}
