interface Props {
  message: string
  onDismiss?: () => void
}

/** A readable error (the `detail` of a problem+json answer), announced to screen readers. */
export function ErrorMessage({ message, onDismiss }: Props) {
  return (
    <div className="error" role="alert">
      <span>{message}</span>
      {onDismiss && (
        <button type="button" className="ghost small" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  )
}
